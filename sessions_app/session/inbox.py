"""A session's inbound messages: what `McpSession.deliver` hands to the SDK's server loop.

The SDK reads a session's messages from a stream (its `ReadStream` protocol:
`receive`, async iteration, `aclose`, and `last_context`, the sender's
contextvars, in which it runs the handler). anyio's memory stream, which the
SDK's own transports use, takes a checkpoint on both sides of every message:
two extra turns of the event loop before a request reaches its handler, a
tenth of a `tools/call`'s cost on a node. Here a message waits in a short
queue and wakes the reader directly.

The queue is bounded, as a session's memory must be: a sender that finds it
full waits for room, as it would on a stream.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Generic, TypeVar

import anyio

T = TypeVar("T")

# Messages a session may hold that its server loop has not taken yet. The loop
# takes each at once (a request only starts its handler), so this fills only
# while the loop is busy with a message it handles inline.
INBOX_CAPACITY = 16


class SessionInbox(Generic[T]):
    """One sender side (`send`, `close`) and the SDK's read side, in one object."""

    __slots__ = ("_capacity", "_closed", "_items", "_reader", "_senders", "last_context")

    def __init__(self, capacity: int = INBOX_CAPACITY) -> None:
        self._capacity = capacity
        # Lists, not deques: they are short, and an empty deque costs 624 bytes in every idle session.
        self._items: list[tuple[contextvars.Context, T]] = []
        self._senders: list[asyncio.Future[None]] = []
        self._reader: asyncio.Future[None] | None = None
        self._closed = False
        self.last_context: contextvars.Context | None = None

    # --- the sending side ------------------------------------------------------

    async def send(self, item: T) -> None:
        """Queue `item` with the sender's context; waits while the inbox is full.
        `anyio.ClosedResourceError` once the inbox is closed."""
        while len(self._items) >= self._capacity and not self._closed:
            room = asyncio.get_running_loop().create_future()
            self._senders.append(room)
            try:
                await room
            finally:
                if room in self._senders:
                    self._senders.remove(room)
        if self._closed:
            raise anyio.ClosedResourceError
        self._items.append((contextvars.copy_context(), item))
        _wake(self._reader)

    def close(self) -> None:
        """No more messages: the reader gets what is queued, then the end; waiting senders are refused."""
        self._closed = True
        _wake(self._reader)
        for room in self._senders:
            _wake(room)

    # --- the SDK's side (ReadStream) ---------------------------------------------

    async def receive(self) -> T:
        while not self._items:
            if self._closed:
                raise anyio.EndOfStream
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        context, item = self._items.pop(0)
        self.last_context = context
        # Every waiting sender looks again, not just the first: one woken and
        # then cancelled would otherwise leave the others waiting beside room.
        for room in self._senders:
            _wake(room)
        return item

    async def aclose(self) -> None:
        self.close()
        self._items.clear()

    def __aiter__(self) -> SessionInbox[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> SessionInbox[T]:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
