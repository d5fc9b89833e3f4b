"""How an answer is written, wherever it goes: to the client's socket, or back through the relay.

A `ResponseWriter` has two primitives, `start` (status and header lines) and
`write` (a piece of the body). Every answer the transport gives (a JSON body,
an error, an SSE stream) is composed from them here, once, so an answer
relayed from another node is byte for byte the one its owner would have
written on its own socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sessions_app import metrics
from sessions_app.http import wire
from sessions_app.http.exceptions import TransportError
from sessions_app.http.sse import SseConnection


class ResponseWriter(Protocol):
    # True once the client went away (known only after someone asked with on_disconnect).
    disconnected: bool
    # True once `start` was called.
    started: bool

    def on_disconnect(self, callback: Callable[[], object]) -> None:
        """Call `callback` (and set `disconnected`) if the client goes away before the answer ends."""
        ...

    async def start(self, status: int, headers: wire.Headers) -> None: ...

    async def write(self, body: bytes, *, more: bool) -> None: ...


async def send_json(writer: ResponseWriter, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    """One JSON body (or none, for 202 and 204).

    With its length: without one the HTTP server frames the body in chunks, which
    costs both ends parsing and the connection a terminating chunk. A 204 has no
    body and must not say it has one (RFC 9110, 8.6).
    """
    base = wire.JSON_HEADERS if body else []
    if status != 204:
        base = [*base, (b"content-length", str(len(body)).encode())]
    await writer.start(status, base + wire.encode_headers(headers or {}))
    await writer.write(body, more=False)


async def send_error(writer: ResponseWriter, error: TransportError) -> None:
    """The one mapping from a refusal to its answer: the error's status, headers and JSON-RPC body."""
    metrics.count_refusal(error.status)
    await send_json(writer, error.status, wire.error_body(error), error.headers)


async def send_sse(
    writer: ResponseWriter,
    connection: SseConnection,
    keepalive: float,
    headers: dict[str, str] | None = None,
    *,
    hold: float = 0.0,
) -> bool:
    """Stream `connection`; True if it ended normally, False if the client went away.

    With `hold`, the answer starts only when the stream ends or `hold` seconds
    have passed, so that a quick answer leaves in one write with its head
    (see sse.POST_STREAM_HOLD). The last write carries the end of the body.
    """
    # A stream open for hours holds no frame of its own for this: the gauge is the library's context.
    with metrics.sse_streams_open.track_inprogress():
        writer.on_disconnect(connection.abort)
        if hold:
            await connection.wait_for_end(hold)
            if writer.disconnected:
                return False
        await writer.start(200, wire.SSE_HEADERS + wire.encode_headers(headers or {}))
        if not connection.has_frames and connection.open:
            # Nothing to send yet (a resumed stream with nothing missed): a comment
            # gets the head out now. HTTP servers write the head with the first
            # piece of the body, and a client, or a proxy in between, waiting for
            # it would otherwise wait for the first event or keep-alive.
            await writer.write(wire.KEEPALIVE_FRAME, more=True)
        async for frames, last in connection.frames(keepalive):
            if writer.disconnected:
                return False
            await writer.write(frames, more=not last)
        return True
