"""One open SSE response: frames queued by the session, written by the consumer.

The session pushes frames without ever waiting on a client. A client that
stops reading fills its outbox; the connection is then aborted (the client can
reopen the stream and resume from the event log), so a stuck reader costs a
bounded amount of memory and never stalls the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sessions_app.http.wire import KEEPALIVE_FRAME

# How long the SSE answer to a POST (either era) waits before it starts, in
# seconds. It starts at once when its stream ends, so a quick answer leaves in
# one write: head, (priming event,) events and answer together. Events of a
# slower handler wait this long at most. Behind Traefik this keeps answers
# whole: Go's HTTP/1 proxy can cut a streamed response it began to forward
# before it finished with the request's body (traefik/traefik#11767,
# golang/go#15527). A quick answer is then already in its buffer; a slow one
# starts after it finished. docs/deploy.md has the measurements.
POST_STREAM_HOLD = 0.05


class SseConnection:
    def __init__(self, max_pending: int) -> None:
        # A list, not a deque: frames only ever go out all at once, and an empty
        # deque costs 624 bytes in every idle stream.
        self._outbox: list[bytes] = []
        self._max_pending = max_pending
        # Made only while the writer waits: most connections (every 2026-07-28
        # answer ready at once, idle streams between events) never need one.
        self._waiter: asyncio.Future[None] | None = None
        self._ending = False
        self.aborted = False

    @property
    def open(self) -> bool:
        return not self._ending

    def push(self, frame: bytes) -> bool:
        """Queue a frame; False if the connection is ending or was aborted for falling behind."""
        if self._ending:
            return False
        if len(self._outbox) >= self._max_pending:
            self.abort()
            return False
        self._outbox.append(frame)
        self._wake()
        return True

    def finish(self, last_frame: bytes | None = None) -> None:
        """End the response once everything queued (and `last_frame`) is written."""
        if self._ending:
            return
        if last_frame is not None:
            self._outbox.append(last_frame)
        self._ending = True
        self._wake()

    def abort(self) -> None:
        """End the response now, dropping whatever is still queued."""
        self._outbox.clear()
        self._ending = True
        self.aborted = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_for_output(self, within: float) -> bool:
        """Wait up to `within` seconds for a frame or the end; False if neither came."""
        if self._outbox or self._ending:
            return True
        try:
            async with asyncio.timeout(within):
                await self._wait()
        except TimeoutError:
            return False
        return True

    async def wait_for_end(self, within: float) -> bool:
        """Wait up to `within` seconds for the end, letting frames queue meanwhile; False if it did not come."""
        try:
            async with asyncio.timeout(within):
                while not self._ending:
                    await self._wait()
        except TimeoutError:
            return False
        return True

    async def _wait(self) -> None:
        """Until the next push, finish or abort."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    @property
    def has_frames(self) -> bool:
        return bool(self._outbox)

    async def frames(self, keepalive: float) -> AsyncIterator[tuple[bytes, bool]]:
        """(frames, last) as they come: whatever queued up joined into one piece, a
        keep-alive comment during silences, and last=True on the piece that ends the response."""
        while True:
            if self._outbox:
                frames = b"".join(self._outbox)
                self._outbox.clear()
                # Nothing is queued after the end, so this piece is the last if the end came.
                last = self._ending
                yield frames, last
                if last:
                    return
            elif self._ending:
                yield b"", True
                return
            elif not await self.wait_for_output(keepalive):
                yield KEEPALIVE_FRAME, False
