"""Changes MCP clients watch, published once and delivered on every node.

Whoever changes data (GraphQL, the admin, an MCP tool, on any node) calls
`publish` once, after the database transaction commits. The change travels
through the channel-layer group `mcp-changes`, in which every node has one
channel of its own; each node hands it to the listeners registered in its
process (the hosted MCP server's), which tell their local sessions. One
message per node, however many sessions it holds.

The node's channel joins the group when the first listener registers, and
joins again every hour: channels-redis forgets group members after a day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

GROUP = "mcp-changes"
MESSAGE_TYPE = "mcp.change"
REJOIN_INTERVAL = 3600.0

Listener = Callable[["Change"], Awaitable[None]]


@dataclass(frozen=True)
class Change:
    """A resource whose content changed (`uri`), and whether the list of resources changed."""

    uri: str | None = None
    list_changed: bool = False

    def to_message(self) -> dict[str, Any]:
        return {"type": MESSAGE_TYPE, "uri": self.uri, "list_changed": self.list_changed}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Change:
        uri = message.get("uri")
        return cls(uri=str(uri) if uri is not None else None, list_changed=bool(message.get("list_changed")))


async def publish(change: Change) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(GROUP, change.to_message())
    except Exception:
        # The change itself is committed; only its notification is lost.
        logger.exception("Could not publish %s", change)


def publish_on_commit(change: Change) -> None:
    """From synchronous code inside a transaction: publish once it commits (never if it rolls back)."""
    transaction.on_commit(lambda: async_to_sync(publish)(change))


class ChangeFeed:
    """This process's end of the group: one channel, many in-process listeners."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every change from now on; returns the way to stop."""
        self._listeners.append(listener)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._receive_forever(), name="mcp-change-feed")
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def _receive_forever(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        # The default prefix, as for every process-local channel (see session_manager.create).
        channel = await layer.new_channel()
        delay = 0.0
        joined_at = -REJOIN_INTERVAL
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - joined_at >= REJOIN_INTERVAL:
                    await layer.group_add(GROUP, channel)
                    joined_at = loop.time()
                async with asyncio.timeout(REJOIN_INTERVAL):
                    message = await layer.receive(channel)
            except TimeoutError:
                continue
            except Exception as exc:
                # Redis away: keep trying, say so once.
                if delay == 0.0:
                    logger.warning("The change feed cannot reach the channel layer (%s); retrying", exc)
                delay = min(max(delay * 2, 0.2), 5.0)
                joined_at = -REJOIN_INTERVAL  # join again once it is back
                await asyncio.sleep(delay)
                continue
            delay = 0.0
            if message.get("type") == MESSAGE_TYPE:
                await self._deliver(Change.from_message(message))

    async def _deliver(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                await listener(change)
            except Exception:
                logger.exception("A change listener failed on %s", change)


_feed: ChangeFeed | None = None


def change_feed() -> ChangeFeed:
    global _feed
    if _feed is None:
        _feed = ChangeFeed()
    return _feed
