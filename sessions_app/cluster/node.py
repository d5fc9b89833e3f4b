"""This process as a member of the cluster.

`this_node()` is the node's identity (its configured id and a random boot id
for this life of the process) together with its background services: the
registry writer, the heartbeat, the reaper and the SIGTERM drain. daphne has no
ASGI lifespan, so the services start on the first request that needs them
(`start()` is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sessions_app.cluster.liveness import every, reap_stale_records
from sessions_app.cluster.registry import SessionRegistry, session_registry
from sessions_app.cluster.registry_writer import RegistryWriter
from sessions_app.conf import McpSettings, mcp_settings

logger = logging.getLogger(__name__)


@dataclass
class ClusterNode:
    settings: McpSettings
    registry: SessionRegistry
    boot_id: str = field(default_factory=lambda: secrets.token_hex(8))
    draining: bool = False
    # Off for nodes embedded in tests, whose process is not a server.
    handle_sigterm: bool = True

    def __post_init__(self) -> None:
        self.writer = RegistryWriter(self.registry)
        self._tasks: list[asyncio.Task[None]] = []
        self._missing_since: dict[tuple[str, str], float] = {}
        self._has_beaten = False
        # Called when the store turns out to have lost this node's records
        # (the session manager writes them again).
        self.on_store_lost: Callable[[], None] = lambda: None

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        heartbeat = self.settings.node_heartbeat_ttl / 3
        self._tasks = [
            loop.create_task(every(heartbeat, "Node heartbeat", self._beat, first_now=True), name="mcp-heartbeat"),
            # Nothing is urgent about reaping at start-up; it would only crowd it.
            loop.create_task(
                every(self.settings.reaper_interval, "Reaper", self._reap, first_now=False), name="mcp-reaper"
            ),
        ]
        if self.handle_sigterm:
            _install_sigterm_drain(loop)

    async def _beat(self) -> None:
        still_there = await self.registry.aheartbeat(self.node_id, self.boot_id)
        if self._has_beaten and not still_there:
            # Our heartbeat vanished before its TTL: Redis restarted empty (or
            # was flushed), and took our session records with it.
            logger.warning("The session registry lost this node's heartbeat; writing its session records again")
            self.on_store_lost()
        self._has_beaten = True

    async def _reap(self) -> None:
        await reap_stale_records(self.registry, self.settings.stale_grace, self._missing_since, time.monotonic())

    async def stop(self) -> None:
        """Stop heartbeating and say goodbye, so the others see this node gone at once."""
        for task in self._tasks:
            task.cancel()
        await self.registry.aforget_node(self.node_id, self.boot_id)


_node: ClusterNode | None = None


def this_node() -> ClusterNode:
    global _node
    settings = mcp_settings()
    if _node is None or _node.settings is not settings:
        _node = ClusterNode(settings, session_registry())
    return _node


def _install_sigterm_drain(loop: asyncio.AbstractEventLoop) -> None:
    """On SIGTERM, drain this node (see shutdown.py) instead of stopping at once."""
    from sessions_app.cluster.shutdown import drain_then_stop

    if threading.current_thread() is not threading.main_thread():
        # `runserver` serves from a thread under its autoreloader, which owns
        # the signals; only a server in the main thread (daphne) drains.
        logger.debug("Not in the main thread: SIGTERM keeps its default handling")
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # A signal handler runs between bytecodes; hand the work to the loop.
        loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_stop(lambda: _chain(previous, signum))))

    signal.signal(signal.SIGTERM, on_sigterm)


def _chain(previous: Any, signum: int) -> None:
    """Let the server's own SIGTERM handling (daphne: stop Twisted's reactor) finish the job."""
    if callable(previous):
        previous(signum, None)
    else:
        raise SystemExit(0)
