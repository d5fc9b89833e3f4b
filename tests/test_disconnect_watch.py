"""A 2026-07-28 request is watched for its client leaving only once its handler has run a while.

Closing the request is how a client of this era cancels, so a slow handler must
be cancelled when its client goes. A quick one needs no watch: a watcher is a
task per request, and a cancellation when the answer is out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from mcp.types import JSONRPCResponse

from sessions_app.http import stateless, wire
from sessions_app.http.sse import SseConnection


class Writer:
    """A ResponseWriter that records what it is asked; its client leaves when the test says so."""

    def __init__(self) -> None:
        self.disconnected = False
        self.started = False
        self.watchers: list[Callable[[], object]] = []
        self.status = 0
        self.body = b""

    def on_disconnect(self, callback: Callable[[], object]) -> None:
        self.watchers.append(callback)

    def leave(self) -> None:
        self.disconnected = True
        for callback in self.watchers:
            callback()

    async def start(self, status: int, headers: wire.Headers) -> None:
        self.started, self.status = True, status

    async def write(self, body: bytes, *, more: bool) -> None:
        self.body += body


def exchange(writer: Writer, outbox: SseConnection, handler: Callable[[], Any]) -> Any:
    context = SimpleNamespace(notifications_sent=0)
    settings = SimpleNamespace(sse_keepalive=5.0)
    return stateless._exchange(writer, handler, outbox, context, settings)  # type: ignore[arg-type]


def reply(outbox: SseConnection) -> tuple[JSONRPCResponse, bytes]:
    message = JSONRPCResponse(jsonrpc="2.0", id=1, result={})
    body = wire.dump_message(message)
    outbox.finish(wire.sse_frame(body))
    return message, body


async def test_a_quick_answer_goes_out_unwatched() -> None:
    writer, outbox = Writer(), SseConnection(16)

    async def quick() -> tuple[JSONRPCResponse, bytes]:
        return reply(outbox)

    await exchange(writer, outbox, quick)
    assert writer.watchers == []
    assert (writer.status, writer.body) == (200, b'{"jsonrpc":"2.0","id":1,"result":{}}')


async def test_a_quick_answer_arms_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler's first step runs before anything is timed: most answers need no timer at all."""
    writer, outbox = Writer(), SseConnection(16)
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    arm = loop.call_at

    def counted(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        timers.append(when)
        return arm(when, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counted)

    async def quick() -> tuple[JSONRPCResponse, bytes]:
        return reply(outbox)

    await exchange(writer, outbox, quick)
    assert timers == []
    assert writer.status == 200


async def test_a_slow_handler_is_cancelled_when_its_client_leaves() -> None:
    writer, outbox = Writer(), SseConnection(16)
    cancelled = asyncio.Event()

    async def parked() -> tuple[JSONRPCResponse, bytes]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            outbox.abort()  # as the real handler wrapper does (stateless.serve_stateless)
            raise
        raise AssertionError("never answers")

    served = asyncio.create_task(exchange(writer, outbox, parked))
    await asyncio.sleep(stateless.DISCONNECT_WATCH_AFTER * 5)
    assert len(writer.watchers) == 1, "a handler running past the window is watched, once"
    writer.leave()
    await asyncio.wait_for(cancelled.wait(), 5)
    await asyncio.wait_for(served, 5)
    assert not writer.started
