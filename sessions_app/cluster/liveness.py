"""Node heartbeats and the reaper of sessions whose owner is gone.

Every node refreshes `mcp:node:{node_id}` (value: its boot id) every third of
the heartbeat TTL. Every node also runs the reaper: a record whose owner's
heartbeat is missing (or names another boot) for longer than the grace period
is deleted, so a crashed node leaves no ghost sessions behind for 30 days.
Running it on every node at once is safe: a delete of a key already deleted
is a no-op, and nothing can bring a dead owner's session back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sessions_app.cluster.registry import RegistryUnavailable, SessionRegistry

logger = logging.getLogger(__name__)


async def reap_stale_records(
    registry: SessionRegistry, grace: float, missing_since: dict[tuple[str, str], float], now: float
) -> int:
    """Delete records whose owner has been gone for `grace` seconds; returns how many.

    `missing_since` remembers, across calls, when each dead owner (node id, boot
    id) was first seen missing; pass an empty dict and grace 0 for a one-shot reap.
    """
    listed = await registry.arecords()
    live = await registry.alive_nodes()
    seen: set[tuple[str, str]] = set()
    removed = 0
    for item in listed:
        owner = (item.record.node_id, item.record.boot_id)
        if live.get(owner[0]) == owner[1]:
            continue
        seen.add(owner)
        if now - missing_since.setdefault(owner, now) >= grace:
            await registry.aremove(item.record.session_id)
            removed += 1
    for owner in set(missing_since) - seen:
        del missing_since[owner]
    if removed:
        logger.info("Reaped %d session records whose owner node is gone", removed)
    return removed


async def every(interval: float, what: str, step: Callable[[], Awaitable[object]], *, first_now: bool) -> None:
    """Run `step` every `interval` seconds forever; log the first failure of a run of them, and the recovery."""
    failing = False
    if not first_now:
        await asyncio.sleep(interval)
    while True:
        try:
            await step()
        except RegistryUnavailable as exc:
            if not failing:
                logger.warning("%s failed, the session registry is unavailable: %s", what, exc)
            failing = True
        except Exception:
            logger.exception("%s failed", what)
        else:
            if failing:
                logger.warning("%s works again", what)
            failing = False
        await asyncio.sleep(interval)
