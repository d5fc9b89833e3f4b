"""What operators do to the cluster's sessions: the admin page and `manage.py mcp_sessions` share it.

Both are synchronous (an admin view, a management command), while the one
close path and the reaper are async: they are called through asgiref's
`async_to_sync`. Under daphne that runs them on the server's own event loop,
where this process's sessions live; in a management command it runs them on a
fresh loop, once per command.

The admin never puts a session id in a page or a URL: the id is a bearer
secret, and URLs end up in access logs. Rows carry `routing.session_hash`
instead, and `find_by_handle` turns a handle back into the record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from asgiref.sync import async_to_sync

from sessions_app.cluster.liveness import reap_stale_records
from sessions_app.cluster.registry import ListedRecord, SessionRecord, SessionRegistry
from sessions_app.cluster.routing import session_hash, short_id
from sessions_app.session.close_reason import CloseReason
from sessions_app.session.manager import session_manager


@dataclass(frozen=True)
class SessionRow:
    """One registry record as operators see it."""

    record: SessionRecord
    # Whether the owner's heartbeat carries the boot id the record was written under.
    alive: bool
    age: float
    ttl: float | None

    @property
    def short_id(self) -> str:
        return short_id(self.record.session_id)

    @property
    def handle(self) -> str:
        return session_hash(self.record.session_id)

    @property
    def client(self) -> str:
        return "/".join(part for part in (self.record.client_name, self.record.client_version) if part)

    @property
    def age_text(self) -> str:
        return format_duration(self.age)

    @property
    def ttl_text(self) -> str:
        return format_duration(self.ttl)


def session_rows(registry: SessionRegistry) -> tuple[list[SessionRow], dict[str, str]]:
    """Every record, by node and oldest first, and the live nodes' boot ids. Raises RegistryUnavailable."""
    listed = registry.records()
    live = registry.live_nodes()
    # created_at is wall-clock time (time.time()) so that it means the same on every node.
    now = time.time()
    rows = [_row(item, live, now) for item in listed]
    rows.sort(key=lambda row: (row.record.node_id, row.record.created_at))
    return rows, live


def _row(item: ListedRecord, live: dict[str, str], now: float) -> SessionRow:
    record = item.record
    alive = live.get(record.node_id) == record.boot_id
    return SessionRow(record, alive=alive, age=max(now - record.created_at, 0.0), ttl=item.ttl)


def find_by_handle(registry: SessionRegistry, handle: str) -> SessionRecord | None:
    """The record whose `session_hash` is `handle`, if any. Raises RegistryUnavailable."""
    return next((item.record for item in registry.records() if session_hash(item.record.session_id) == handle), None)


def close_sessions(session_ids: Sequence[str], reason: CloseReason) -> dict[str, bool]:
    """Close each session through the one close path; id -> whether anybody knew it."""

    async def close_all() -> dict[str, bool]:
        manager = session_manager()
        return {session_id: await manager.close(session_id, reason) for session_id in session_ids}

    return async_to_sync(close_all)()


def reap_dead_owners(registry: SessionRegistry, grace: float) -> int:
    """Delete the records of owners that are not alive now and still not after `grace` seconds.

    `reap_stale_records` counts an owner's absence from when it first saw it
    missing. A one-shot run has seen nothing before, so with grace > 0 it looks
    once, waits `grace` seconds, and looks again. Returns how many went.
    """

    async def reap() -> int:
        missing_since: dict[tuple[str, str], float] = {}
        removed = await reap_stale_records(registry, grace, missing_since, time.monotonic())
        if grace > 0:
            await asyncio.sleep(grace)
            removed += await reap_stale_records(registry, grace, missing_since, time.monotonic())
        return removed

    return async_to_sync(reap)()


def format_duration(seconds: float | None) -> str:
    """`None` (no expiry) -> "-", else the two largest units: "45s", "3m 12s", "2h 5m", "29d 23h"."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
