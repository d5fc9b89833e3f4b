"""Changes MCP clients watch, published once and delivered on every node.

Whoever changes data (GraphQL, the admin, an MCP tool, on any node) calls
`publish` once, after the database transaction commits. The change travels
through the channel-layer group `mcp-changes`, in which every node has one
channel of its own; each node hands it to the listeners registered in its
process (the hosted MCP server's), which tell their local sessions. One
message per node, however many sessions it holds.

The node's channel joins the group when the first listener registers, and
joins again every hour: channels-redis forgets group members after a day.

Redis going away must not lose a change silently. A publish is retried for
up to PUBLISH_PATIENCE; one that still fails is delivered to this node's own
listeners, and once Redis answers again every node is sent a *resync*, as is
every local listener whenever this node's receiver was cut off: "you may have
missed something, re-read what you watch". A channel leaves the group when
its node shuts down; one whose node died without leaving is taken out by the
other nodes' reapers (`reap_dead_members`, once its node has been missing for
a heartbeat TTL), which learn each channel's node from the MEMBERS_KEY hash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from sessions_app import metrics

logger = logging.getLogger(__name__)

GROUP = "mcp-changes"
MESSAGE_TYPE = "mcp.change"
REJOIN_INTERVAL = 3600.0
# How long a publish keeps trying across a Redis blip (the caller, a request
# that just committed a change, waits that long at most), and between tries.
PUBLISH_PATIENCE = 2.0
PUBLISH_RETRY_DELAY = 0.1
# The longest wait between two attempts of the receiver to reach Redis again.
RECONNECT_DELAY_MAX = 0.5
# Redis hash: a member channel of the group -> "<node id> <boot id>" of the process reading it.
MEMBERS_KEY = "mcp:change-feed:members"

Listener = Callable[["Change"], Awaitable[None]]


@dataclass(frozen=True)
class Change:
    """A resource whose content changed (`uri`), and whether the list of resources changed.

    A `resync` names nothing: changes may have been missed, so listeners tell
    their clients to re-read everything they watch.
    """

    uri: str | None = None
    list_changed: bool = False
    resync: bool = False
    # When it was published (epoch seconds; 0: not known), for the delivery lag metric.
    # Nodes' clocks are assumed in step (NTP): the lag is only as good as they are.
    published_at: float = 0.0

    def to_message(self) -> dict[str, Any]:
        return {
            "type": MESSAGE_TYPE,
            "uri": self.uri,
            "list_changed": self.list_changed,
            "resync": self.resync,
            "at": self.published_at,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Change:
        uri = message.get("uri")
        return cls(
            uri=str(uri) if uri is not None else None,
            list_changed=bool(message.get("list_changed")),
            resync=bool(message.get("resync")),
            published_at=_seconds(message.get("at")),
        )


RESYNC = Change(resync=True)


async def publish(change: Change) -> None:
    """Send `change` to every node, trying for up to PUBLISH_PATIENCE; past that, see `ChangeFeed.missed`."""
    layer = get_channel_layer()
    if layer is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PUBLISH_PATIENCE
    change = replace(change, published_at=time.time())
    while True:
        try:
            await layer.group_send(GROUP, change.to_message())
            metrics.notifications_published.labels("ok").inc()
            await change_feed().pay_resync(layer)
            return
        except Exception as exc:
            if loop.time() + PUBLISH_RETRY_DELAY > deadline:
                # The change itself is committed; the other nodes learn of it by a resync.
                logger.warning(
                    "Could not publish %s (%s): a resync follows once the channel layer answers", change, exc
                )
                metrics.notifications_published.labels("failed").inc()
                await change_feed().missed(change)
                return
        await asyncio.sleep(PUBLISH_RETRY_DELAY)


def publish_on_commit(change: Change) -> None:
    """From synchronous code inside a transaction: publish once it commits (never if it rolls back)."""
    transaction.on_commit(lambda: async_to_sync(publish)(change))


class ChangeFeed:
    """This process's end of the group: one channel, many in-process listeners."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        # Changes received and not yet handed to the listeners, merged by resource
        # (at most one per URI, plus one for the list): reading the channel never
        # waits for delivery, so a burst cannot back the channel up in Redis,
        # where channels-redis drops what passes its capacity.
        self._pending: dict[str | None, Change] = {}
        self._has_pending = asyncio.Event()
        self._delivery: asyncio.Task[None] | None = None
        self._channel: str | None = None
        # A publish failed: every node is owed a resync once the layer answers.
        self._resync_owed = False

    async def missed(self, change: Change) -> None:
        """A change no other node heard of: this node's listeners get it now, every node a resync later."""
        self._resync_owed = True
        self._enqueue(change)

    async def leave(self) -> None:
        """Leave the group (shutdown): a channel nobody reads must not fill up with changes for a day."""
        layer = get_channel_layer()
        if layer is not None and self._channel is not None:
            try:
                await _discard(layer, self._channel)
            except Exception as exc:
                logger.warning("Could not leave the change group (%s)", exc)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every change from now on; returns the way to stop."""
        self._listeners.append(listener)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._receive_forever(), name="mcp-change-feed")
        if self._delivery is None or self._delivery.done():
            self._delivery = loop.create_task(self._deliver_forever(), name="mcp-change-delivery")
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def _receive_forever(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        # The default prefix, as for every process-local channel (see session_manager.create).
        channel = self._channel = await layer.new_channel()
        delay = 0.0
        joined_at = -REJOIN_INTERVAL
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - joined_at >= REJOIN_INTERVAL:
                    await layer.group_add(GROUP, channel)
                    await _members(layer).hset(MEMBERS_KEY, channel, _this_life())
                    joined_at = loop.time()
                    if delay:
                        await self._recovered(layer)
                    delay = 0.0
                async with asyncio.timeout(REJOIN_INTERVAL):
                    message = await layer.receive(channel)
            except TimeoutError:
                continue
            except Exception as exc:
                # Redis away: keep trying, briefly, so the group is joined again as soon as it answers.
                if delay == 0.0:
                    logger.warning("The change feed cannot reach the channel layer (%s); retrying", exc)
                delay = min(max(delay * 2, 0.05), RECONNECT_DELAY_MAX)
                joined_at = -REJOIN_INTERVAL  # join again once it is back (Redis may have lost the group)
                await asyncio.sleep(delay)
                continue
            if message.get("type") == MESSAGE_TYPE:
                self._enqueue(Change.from_message(message))

    async def _recovered(self, layer: Any) -> None:
        """Back in the group after a gap: what was published meanwhile never reached this node."""
        logger.warning("The change feed is back; telling local listeners to re-read what they watch")
        self._enqueue(RESYNC)
        await self.pay_resync(layer)

    async def pay_resync(self, layer: Any) -> None:
        """If a publish failed earlier, send every node the resync it is owed (the layer answers again)."""
        if not self._resync_owed:
            return
        self._resync_owed = False
        try:
            await layer.group_send(GROUP, RESYNC.to_message())
        except Exception:
            self._resync_owed = True

    def _enqueue(self, change: Change) -> None:
        """Queue `change` for the listeners, merged with a pending one for the same resource.

        A subscriber is then told at least once after the last change to what
        it watches, though perhaps once for several. A resync covers everything.
        """
        if change.resync:
            self._pending = {None: RESYNC}
        elif None in self._pending and self._pending[None].resync:
            pass
        else:
            earlier = self._pending.pop(change.uri, None)
            if earlier is not None:
                # Waiting since the earlier one: the lag is counted from it.
                change = Change(
                    uri=change.uri,
                    list_changed=change.list_changed or earlier.list_changed,
                    published_at=earlier.published_at or change.published_at,
                )
            self._pending[change.uri] = change
        self._has_pending.set()

    async def _deliver_forever(self) -> None:
        while True:
            await self._has_pending.wait()
            self._has_pending.clear()
            while self._pending:
                key = next(iter(self._pending))
                await self._deliver(self._pending.pop(key))

    async def _deliver(self, change: Change) -> None:
        metrics.notifications_delivered.inc()
        if change.published_at:
            metrics.notification_lag.observe(max(time.time() - change.published_at, 0.0))
        for listener in list(self._listeners):
            try:
                await listener(change)
            except Exception:
                logger.exception("A change listener failed on %s", change)


async def reap_dead_members(alive: dict[str, str], missing_since: dict[str, float], now: float, grace: float) -> int:
    """Take out of the group every channel whose node has not been alive for `grace` seconds; how many.

    `alive` maps node id to boot id. `missing_since` remembers, across calls,
    when each channel was first seen without its node. The grace matters after
    Redis restarts empty: every node's heartbeat is gone until its next beat,
    while the nodes' channels are back in the group already.
    """
    layer = get_channel_layer()
    if layer is None or not hasattr(layer, "connection"):
        return 0  # the in-memory layer of a single process has no one else's channels
    members = await _members(layer).hgetall(MEMBERS_KEY)
    dead: list[str] = []
    missing: set[str] = set()
    for raw_channel, life in members.items():
        node_id, _, boot_id = _text(life).partition(" ")
        if alive.get(node_id) == boot_id:
            continue
        channel = _text(raw_channel)
        missing.add(channel)
        if now - missing_since.setdefault(channel, now) >= grace:
            dead.append(channel)
    for channel in set(missing_since) - missing:
        del missing_since[channel]
    for channel in dead:
        missing_since.pop(channel, None)
        await _discard(layer, channel)
    if dead:
        logger.warning("Took %d channels of dead processes out of the change group", len(dead))
    return len(dead)


async def _discard(layer: Any, channel: str) -> None:
    await layer.group_discard(GROUP, channel)
    await _members(layer).hdel(MEMBERS_KEY, channel)


def _members(layer: Any) -> Any:
    """The Redis connection the group lives on (channels-redis shards groups by name)."""
    return layer.connection(layer.consistent_hash(GROUP))


def _this_life() -> str:
    """This process's node and boot, with its heartbeat running: the reapers judge the channel by it."""
    from sessions_app.cluster.node import this_node  # node.py's reaper calls into this module

    node = this_node()
    node.start()
    return f"{node.node_id} {node.boot_id}"


def _seconds(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_feed: ChangeFeed | None = None


def change_feed() -> ChangeFeed:
    global _feed
    if _feed is None:
        _feed = ChangeFeed()
    return _feed
