"""The /mcp endpoint: one Channels consumer per HTTP request.

The consumer reads the body (refusing oversized ones early), runs the common
checks, and hands the request to the era that serves it:

- POST `initialize`, and anything carrying `Mcp-Session-Id`: the handshake
  era, served by an in-process `McpSession` (see session.py);
- POST without a session carrying the 2026-07-28 envelope: stateless.py.

Every refusal is a `TransportError`, answered in one place (`handle`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp.types import INTERNAL_ERROR, JSONRPCError, JSONRPCRequest, jsonrpc_message_adapter
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import ValidationError

from sessions_app.cluster.misroute import report_miss
from sessions_app.conf import McpSettings, mcp_settings
from sessions_app.http import wire
from sessions_app.http.exceptions import (
    BadRequest,
    BodyTooLarge,
    MethodNotAllowed,
    SessionNotFound,
    StreamConflict,
    TooManyRequests,
    TransportError,
)
from sessions_app.http.request import (
    McpRequest,
    parse_message_object,
    require_post_headers,
    require_session_id_syntax,
    require_sse_accept,
    require_trusted_caller,
)
from sessions_app.http.sse import POST_STREAM_HOLD, SseConnection
from sessions_app.http.stateless import is_stateless_request, serve_stateless
from sessions_app.session.event_log import EventsLost, UnknownCursor, parse_event_id
from sessions_app.session.manager import session_manager
from sessions_app.session.session import McpSession, RequestInfo, Stream

logger = logging.getLogger(__name__)

ALLOWED_METHODS = "GET, POST, DELETE"
# One answer for every session we cannot serve: ended, reaped, never existed,
# or alive on another node. Clients recover the same way from all of them.
SESSION_NOT_FOUND = "Session not found on this node: it ended or lives elsewhere; send initialize to start a new one"


class McpConsumer(AsyncHttpConsumer):  # type: ignore[misc]  # channels ships no types
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.settings: McpSettings = mcp_settings()
        self._receive = receive
        self.disconnected = False
        self._on_disconnect: list[Callable[[], object]] = []
        self._disconnect_watcher: asyncio.Task[None] | None = None
        self._received_bytes = 0
        self._response_started = False
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
            await self.send_error(BodyTooLarge(f"Payload Too Large: the limit is {self.settings.max_body_bytes} bytes"))
            raise StopConsumer()
        self.body.append(chunk)
        if message.get("more_body"):
            return
        try:
            await self.handle(b"".join(self.body))
        finally:
            if self._disconnect_watcher is not None:
                self._disconnect_watcher.cancel()
        raise StopConsumer()

    async def handle(self, body: bytes) -> None:
        request = McpRequest.from_scope(self.scope)
        try:
            require_trusted_caller(request, self.settings)
            if request.method == "POST":
                await self.post(request, body)
            elif request.method == "GET":
                await self.get(request)
            elif request.method == "DELETE":
                await self.delete(request)
            else:
                raise MethodNotAllowed("Method Not Allowed", headers={"Allow": ALLOWED_METHODS})
        except TransportError as error:
            await self.send_error(error)
        except Exception:
            logger.exception("Unexpected error serving %s /mcp", request.method)
            if not self._response_started:
                body = wire.dump_message(wire.error_message(INTERNAL_ERROR, "Internal server error"))
                await self.send_json(500, body)

    # --- POST ------------------------------------------------------------

    async def post(self, request: McpRequest, body: bytes) -> None:
        require_post_headers(request, json_only=self.settings.json_response)
        decoded = parse_message_object(body)
        if is_stateless_request(decoded, request):
            await serve_stateless(self, request, decoded, self.settings)
            return
        try:
            message = jsonrpc_message_adapter.validate_python(decoded, by_name=False)
        except ValidationError:
            raise BadRequest("Invalid Request: not a JSON-RPC request, notification or response") from None
        info = RequestInfo(request.headers)
        if isinstance(message, JSONRPCRequest) and message.method == "initialize":
            await self.initialize(message, info)
            return
        session = self.find_session(request)
        if not isinstance(message, JSONRPCRequest):
            # Notifications and the client's answers to our requests: accepted, no body.
            await session.deliver(SessionMessage(message, ServerMessageMetadata(request_context=info)))
            await self.send_json(202, b"")
            return
        # Counted in the session, not in open connections: a client that
        # drops its streams must not pile up handlers without bound.
        if session.pending_requests >= self.settings.max_requests_per_session:
            raise TooManyRequests("Too Many Requests: this session has too many requests in flight")
        try:
            stream = session.open_request_stream(message, json_response=self.settings.json_response)
        except KeyError:
            raise StreamConflict("Conflict: a request with this id is already in flight") from None
        await self.serve_request(session, stream, SessionMessage(message, session.request_metadata(info, stream)))

    async def initialize(self, message: JSONRPCRequest, info: RequestInfo) -> None:
        """Open a session; its id goes out only with a successful InitializeResult."""
        manager = session_manager()
        session = await manager.create()
        params = message.params or {}
        requested = params.get("protocolVersion")
        session.protocol_version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        client = params.get("clientInfo")
        if isinstance(client, dict):
            session.client_name = str(client.get("name", ""))[:200]
            session.client_version = str(client.get("version", ""))[:200]
        # The answer to initialize is always one JSON body, so that a refused
        # initialize never hands out a session id.
        stream = session.open_request_stream(message, json_response=True)
        assert stream.response is not None
        session.in_flight += 1
        try:
            await session.deliver(SessionMessage(message, session.request_metadata(info, stream)))
            reply = await stream.response
        except BaseException:
            await manager.close(session.id, "initialize did not complete")
            raise
        finally:
            session.in_flight -= 1
            session.touch()
        if isinstance(reply, JSONRPCError):
            await manager.close(session.id, "initialize refused")
            await self.send_json(200, wire.dump_message(reply))
            return
        manager.publish(session)
        await self.send_json(200, wire.dump_message(reply), {wire.SESSION_ID_HEADER: session.id})

    async def serve_request(self, session: McpSession, stream: Stream, message: SessionMessage) -> None:
        session.in_flight += 1
        try:
            await session.deliver(message)
            if stream.response is not None:
                await self.send_json(200, wire.dump_message(await stream.response))
            elif stream.connection is not None:
                await self.send_stream(session, stream, stream.connection, hold=POST_STREAM_HOLD)
        finally:
            session.in_flight -= 1
            session.touch()

    # --- GET and DELETE ---------------------------------------------------

    async def get(self, request: McpRequest) -> None:
        require_sse_accept(request)
        session = self.find_session(request)
        last_event_id = request.headers.get(wire.LAST_EVENT_ID_HEADER)
        if last_event_id is None:
            connection = session.open_standalone_stream()
            if connection is None:
                raise StreamConflict("Conflict: this session's standalone stream is already open")
            stream_number = 0
        else:
            try:
                stream_number, seq = parse_event_id(last_event_id)
                connection = session.resume_stream(stream_number, seq)
            except (UnknownCursor, KeyError):
                raise BadRequest("Bad Request: Last-Event-ID names no stream of this session") from None
            except EventsLost:
                raise StreamConflict("Conflict: the events after Last-Event-ID are no longer kept") from None
        await self.send_stream(session, session.streams[stream_number], connection)

    async def delete(self, request: McpRequest) -> None:
        session_id = self.session_id_of(request)
        # The one close path also ends a session that lives on another node.
        if not await session_manager().close(session_id, "client DELETE"):
            raise SessionNotFound(SESSION_NOT_FOUND)
        await self.send_json(204, b"")

    def find_session(self, request: McpRequest) -> McpSession:
        """The session this request names, from this process's table only (no registry read)."""
        session_id = self.session_id_of(request)
        session = session_manager().get(session_id)
        if session is None:
            # The misroute middleware looks the id up in the registry after we answer.
            report_miss(self.scope, session_id)
            raise SessionNotFound(SESSION_NOT_FOUND)
        return session

    def session_id_of(self, request: McpRequest) -> str:
        session_id = request.session_id
        if session_id is None:
            raise BadRequest("Bad Request: Mcp-Session-Id header is required")
        require_session_id_syntax(session_id)
        version = request.headers.get(wire.PROTOCOL_VERSION_HEADER)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise BadRequest(f"Bad Request: unsupported MCP-Protocol-Version {version[:40]!r} for a session")
        return session_id

    # --- responses --------------------------------------------------------

    async def send_error(self, error: TransportError) -> None:
        await self.send_json(error.status, wire.error_body(error), error.headers)

    async def send_json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._response_started = True
        extra = wire.encode_headers(headers or {})
        base = wire.JSON_HEADERS if body else []
        await self.send_response(status, body, headers=base + extra)

    async def send_stream(
        self, session: McpSession, stream: Stream, connection: SseConnection, *, hold: float = 0.0
    ) -> None:
        session.touch()
        try:
            await self.send_sse(connection, hold=hold)
        finally:
            # A dropped stream is not a cancellation in this era: the session
            # keeps logging its events for a resume.
            stream.detach(connection)
            session.touch()

    async def send_sse(
        self, connection: SseConnection, headers: dict[str, str] | None = None, *, hold: float = 0.0
    ) -> bool:
        """Stream `connection`; True if it ended normally, False if the client went away.

        With `hold`, the response starts only when the stream ends or `hold`
        seconds have passed, so that a quick answer leaves in one write with
        its head (see POST_STREAM_HOLD).
        """
        self.on_disconnect(connection.abort)
        if hold:
            await connection.wait_for_end(hold)
            if self.disconnected:
                return False
        self._response_started = True
        await self.send_headers(status=200, headers=wire.SSE_HEADERS + wire.encode_headers(headers or {}))
        async for frame in connection.frames(self.settings.sse_keepalive):
            await self.send_body(frame, more_body=True)
        if self.disconnected:
            return False
        await self.send_body(b"")
        return True

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
