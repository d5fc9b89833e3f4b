"""This process as a member of the cluster.

`this_node()` is the node's identity (its configured id and a random boot id
for this life of the process) together with its background services: the
registry writer, the heartbeat, the reaper and the inbox other nodes reach
it on (inbox.py). daphne has no ASGI lifespan, so the services start on the
first request that needs them (`start()` is idempotent). The SIGTERM drain
is the session manager's to install (shutdown.py), since it closes sessions.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sessions_app.cluster.change_feed import reap_dead_members
from sessions_app.cluster.inbox import NodeInbox, inbox_channel
from sessions_app.cluster.liveness import every, reap_stale_records
from sessions_app.cluster.registry import RegistryUnavailable, SessionRegistry, session_registry
from sessions_app.cluster.registry_writer import RegistryWriter
from sessions_app.conf import McpSettings, mcp_settings

logger = logging.getLogger(__name__)


@dataclass
class ClusterNode:
    settings: McpSettings
    registry: SessionRegistry
    boot_id: str = field(default_factory=lambda: secrets.token_hex(8))
    draining: bool = False
    # When the drain began (time.monotonic()), and whether /healthz's first 503 of it was logged (shutdown.py).
    draining_since: float = 0.0
    drain_announced: bool = False
    # Off for nodes embedded in tests, whose process is not a server.
    handle_sigterm: bool = True

    def __post_init__(self) -> None:
        self.writer = RegistryWriter(self.registry)
        self.inbox = (
            NodeInbox(self.settings.relay_url, inbox_channel(self.node_id, self.boot_id))
            if self.settings.relay
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._missing_since: dict[tuple[str, str], float] = {}
        self._members_missing_since: dict[str, float] = {}
        self._has_beaten = False
        self._stopped = False
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
        if self.inbox is not None:
            self.inbox.start()

    async def _beat(self) -> None:
        still_there = await asyncio.to_thread(self._beat_in_thread)
        if self._has_beaten and not still_there:
            # Our heartbeat vanished before its TTL: Redis restarted empty (or
            # was flushed), and took our session records with it.
            logger.warning("The session registry lost this node's heartbeat; writing its session records again")
            self.on_store_lost()
        self._has_beaten = True

    def _beat_in_thread(self) -> bool:
        still_there = self.registry.heartbeat(self.node_id, self.boot_id)
        if self._stopped:
            # `stop` cancelled the beat while this thread was writing it: a
            # cancelled coroutine cannot stop its thread, so the heartbeat
            # could outlive the goodbye. Say goodbye again, after it.
            self.registry.forget_node(self.node_id, self.boot_id)
        return still_there

    async def _reap(self) -> None:
        await reap_stale_records(self.registry, self.reap_grace, self._missing_since, time.monotonic())
        # A live node beats at least once per TTL: missing for longer, it is gone.
        grace = self.settings.node_heartbeat_ttl
        await reap_dead_members(await self.registry.alive_nodes(), self._members_missing_since, time.monotonic(), grace)

    @property
    def reap_grace(self) -> float:
        """How long a dead owner's records stay. With adoption, as long as its sessions could
        have lived on idle: until then a client may come back and have one adopted."""
        grace = self.settings.stale_grace
        return max(grace, self.settings.session_idle_timeout) if self.settings.adoption else grace

    async def leave(self) -> None:
        """Stop heartbeating and listening, and say goodbye, so the others see this node gone at once.

        What is being sent still goes out (answers to relayed requests, say):
        `stop` closes the rest.
        """
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        if self.inbox is not None:
            self.inbox.stop_listening()
        try:
            await self.registry.aforget_node(self.node_id, self.boot_id)
        except RegistryUnavailable as exc:
            logger.warning("Could not tell the registry this node is leaving (%s); its heartbeat will expire", exc)

    async def stop(self) -> None:
        await self.leave()
        if self.inbox is not None:
            await self.inbox.close()


_node: ClusterNode | None = None


def this_node() -> ClusterNode:
    global _node
    settings = mcp_settings()
    if _node is None or _node.settings is not settings:
        _node = ClusterNode(settings, session_registry())
    return _node
