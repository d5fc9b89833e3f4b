"""The /mcp endpoint's HTTP shell: one Channels consumer per HTTP request.

It reads the body (refusing an oversized one as soon as it is), hands the
request to `endpoint.serve`, and writes the answer to the socket: it is the
`ResponseWriter` for requests that came from a client. Everything else, the
checks, the eras and the answers, lives in the modules it calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer

from sessions_app.conf import McpSettings, mcp_settings
from sessions_app.http import wire
from sessions_app.http.endpoint import serve
from sessions_app.http.exceptions import BodyTooLarge
from sessions_app.http.request import McpRequest
from sessions_app.http.security import security_policy
from sessions_app.http.writer import send_error


class McpConsumer(AsyncHttpConsumer):  # type: ignore[misc]  # channels ships no types
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.settings: McpSettings = mcp_settings()
        self._receive = receive
        self.disconnected = False
        self.started = False
        self._on_disconnect: list[Callable[[], object]] = []
        self._disconnect_watcher: asyncio.Task[None] | None = None
        self._received_bytes = 0
        self.request = McpRequest.from_scope(scope)
        self._security = security_policy()
        self._secure = self._security.is_secure(self.request.scheme, self.request.headers)
        # What AsyncConsumer.__call__ does, less what this consumer never uses.
        # It has no channel-layer channel (sessions own theirs; one per request
        # would cost a Redis round trip for nothing), so Channels' generic loop,
        # which races `receive` against that channel with asyncio.wait and a
        # task per message, is replaced by plain receives.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: Any) -> None:
        # Channels closes stale database connections before every message via
        # a thread hand-off (aclose_old_connections); the transport never
        # touches the database (MCP handlers that do use database_sync_to_async,
        # which closes them), so it skips that per-message cost.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def http_request(self, message: dict[str, Any]) -> None:
        chunk = message.get("body", b"")
        self._received_bytes += len(chunk)
        if self._received_bytes > self.settings.max_body_bytes:
            # mcpsite/http_server.py refuses it before this, while reading; this
            # check is for servers that read the whole body first (runserver).
            await send_error(self, BodyTooLarge.over(self.settings.max_body_bytes))
            raise StopConsumer()
        self.body.append(chunk)
        if message.get("more_body"):
            return
        try:
            await serve(self, self.request, b"".join(self.body))
        finally:
            # Forgotten as it is cancelled: its CancelledError will hold its frame, which
            # holds this consumer, and a consumer still holding the task would make a
            # cycle that only the garbage collector could free.
            watcher, self._disconnect_watcher = self._disconnect_watcher, None
            if watcher is not None:
                watcher.cancel()
        raise StopConsumer()

    # --- ResponseWriter ---------------------------------------------------

    async def start(self, status: int, headers: wire.Headers) -> None:
        self.started = True
        # What Django's SecurityMiddleware adds to its pages, on every answer
        # to a client: this node's own and those relayed from the owner alike.
        headers = headers + self._security.headers_for(headers, secure=self._secure)
        await self.send_headers(status=status, headers=headers)

    async def write(self, body: bytes, *, more: bool) -> None:
        await self.send_body(body, more_body=more)

    def on_disconnect(self, callback: Callable[[], object]) -> None:
        """Call `callback` (and set `disconnected`) if the client goes away before the response ends.

        Once the body is read, the only message left for the client to send is
        its disconnect. Nothing listens for it until someone asks here: a JSON
        answer in the handshake era needs no watcher, streams and 2026-07-28
        requests (whose cancellation it is) do.
        """
        self._on_disconnect.append(callback)
        if self._disconnect_watcher is None:
            self._disconnect_watcher = asyncio.get_running_loop().create_task(self._watch_for_disconnect())

    async def _watch_for_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.disconnected = True
        for callback in self._on_disconnect:
            callback()
