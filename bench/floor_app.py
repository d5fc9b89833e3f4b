"""The floor of our stack: a bare Channels consumer under our production server, answering fixed bytes.

Served as ours is: `python -m mcpsite.http_server bench.floor_app:application`,
with the same routing (ProtocolTypeRouter, URLRouter, `/mcp`). The consumer
reads the body with the same plain receive loop as ours
(sessions_app/http/consumer.py) and answers every POST with bytes made once:
the answer of an `initialize` (with an `Mcp-Session-Id`), a 202 for a
notification, and otherwise the echo tool's answer. No parsing, no session, no
SDK: what is left is what daphne, Twisted and Channels cost per request, the
most any application on this stack can do. BENCH_FLOOR_SSE=1 answers as an SSE
stream of one event, otherwise as a JSON body.
"""

from __future__ import annotations

import json
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")
django.setup()  # mcpsite.http_server reads its limits from the settings

from channels.exceptions import StopConsumer  # noqa: E402
from channels.generic.http import AsyncHttpConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .messages import EXPECTED_IN_ANSWER  # noqa: E402

SSE = os.environ.get("BENCH_FLOOR_SSE", "") == "1"
SESSION_ID = "f100f100." + "0" * 48
INITIALIZED = {
    "jsonrpc": "2.0",
    "id": 1,
    "result": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": "floor", "version": "1"},
    },
}
ECHOED = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "x"}], "isError": False}}


def _answer(message: dict[str, Any]) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(message, separators=(",", ":")).encode()
    assert EXPECTED_IN_ANSWER in body
    if SSE:
        return [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")], (
            b"event: message\ndata: " + body + b"\n\n"
        )
    return [(b"content-type", b"application/json")], body


INITIALIZE_HEADERS, INITIALIZE_BODY = _answer(INITIALIZED)
INITIALIZE_HEADERS = [*INITIALIZE_HEADERS, (b"mcp-session-id", SESSION_ID.encode())]
CALL_HEADERS, CALL_BODY = _answer(ECHOED)


class FloorConsumer(AsyncHttpConsumer):  # type: ignore[misc]  # channels ships no types
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope, self.base_send, self.channel_layer = scope, send, None
        body: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise StopConsumer()
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    await self._answer(b"".join(body))
                    raise StopConsumer()
        except StopConsumer:
            pass

    async def _answer(self, body: bytes) -> None:
        if b'"method":"initialize"' in body:
            headers, payload = INITIALIZE_HEADERS, INITIALIZE_BODY
        elif b'"id"' not in body:
            await self.send_headers(status=202, headers=[])
            await self.send_body(b"")
            return
        else:
            headers, payload = CALL_HEADERS, CALL_BODY
        await self.send_headers(status=200, headers=headers)
        await self.send_body(payload)


application = ProtocolTypeRouter({"http": URLRouter([path("mcp", FloorConsumer.as_asgi())])})
