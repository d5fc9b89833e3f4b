"""The 2026-07-28 era: one self-contained POST, no session.

Each request carries its protocol version and client capabilities in
`params._meta`; the SDK's classifier checks them against the `Mcp-Method`,
`Mcp-Name` and `MCP-Protocol-Version` headers, and the SDK's `ServerRunner`
runs the handler. The answer is JSON unless the handler emits notifications
first (or stays silent past the keep-alive interval), in which case the
response turns into an SSE stream ending with the answer. The client closing
the response cancels the handler: in this era that is how a client cancels.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.runner import ServerRunner, aclose_shielded, modern_error_data
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.shared.message import MessageMetadata, ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp.types import (
    HEADER_MISMATCH,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    ProgressToken,
    RequestId,
)
from pydantic import ValidationError

from sessions_app import metrics
from sessions_app.conf import McpSettings
from sessions_app.http import wire
from sessions_app.http.exceptions import BadRequest, NotAcceptable
from sessions_app.http.request import McpRequest, client_of
from sessions_app.http.sse import POST_STREAM_HOLD, SseConnection
from sessions_app.http.tool_param_headers import param_header_rejection
from sessions_app.http.writer import ResponseWriter, send_json, send_sse
from sessions_app.session.hosted_server import HostedServer, hosted_server
from sessions_app.session.manager import session_manager
from sessions_app.session.session import MAX_PENDING_FRAMES, RequestInfo


@dataclass
class ExchangeContext:
    """The SDK's `DispatchContext` for one stateless exchange: notifications go onto the response."""

    transport: TransportContext
    request_id: RequestId
    message_metadata: MessageMetadata
    progress_token: ProgressToken | None
    outbox: SseConnection
    notifications_sent: int = 0
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    # This era forbids server-to-client requests.
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        notification = JSONRPCNotification(jsonrpc="2.0", method=method, params=dict(params) if params else None)
        self.notifications_sent += 1
        self.outbox.push(wire.sse_frame(wire.dump_message(notification)))

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.notify("notifications/progress", params)


# How long a handler runs before its client's leaving is watched for (see `_exchange`).
DISCONNECT_WATCH_AFTER = 0.01


async def serve_stateless(
    writer: ResponseWriter, request: McpRequest, decoded: dict[str, Any], settings: McpSettings
) -> None:
    if "id" not in decoded:
        # Fire-and-forget: this era defines no client notifications over HTTP.
        try:
            JSONRPCNotification.model_validate(decoded)
        except ValidationError:
            raise BadRequest("Invalid Request: not a JSON-RPC notification") from None
        await send_json(writer, 202, b"")
        return
    try:
        message = JSONRPCRequest.model_validate(decoded)
    except ValidationError:
        raise BadRequest("Invalid Request: the body must be one JSON-RPC request or notification") from None
    if message.method == "subscriptions/listen" and not request.accepts(wire.SSE_CONTENT_TYPE):
        raise NotAcceptable("Not Acceptable: subscriptions/listen answers with text/event-stream")

    # Only a header sent twice can be a duplicated routing header; most requests repeat none.
    repeats = len(request.headers) < len(request.scope_headers)
    duplicated = find_duplicated_routing_header(request.raw_headers) if repeats else None
    verdict = (
        InboundLadderRejection(HEADER_MISMATCH, f"{duplicated} header appears more than once")
        if duplicated
        else classify_inbound_request(decoded, headers=request.headers)
    )
    if isinstance(verdict, InboundLadderRejection):
        await _send_rejection(writer, verdict, message.id)
        return

    host = await hosted_server()
    outbox = SseConnection(MAX_PENDING_FRAMES)
    context = ExchangeContext(
        transport=TransportContext(kind="streamable-http", can_send_request=False, headers=request.headers),
        request_id=message.id,
        message_metadata=ServerMessageMetadata(request_context=RequestInfo(request.headers)),
        progress_token=progress_token_from_params(message.params),
        outbox=outbox,
    )
    param_rejection = await param_header_rejection(host, message, request.headers, verdict, context)
    if param_rejection is not None:
        await _send_rejection(writer, param_rejection, message.id)
        return
    connection = Connection.from_envelope(verdict.protocol_version, verdict.client_info, verdict.client_capabilities)

    async def answer() -> tuple[JSONRPCResponse | JSONRPCError, bytes]:
        started = time.perf_counter()
        try:
            result = await _serve_one(host, context, message.method, message.params, connection)
            reply: JSONRPCResponse | JSONRPCError = JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)
        except asyncio.CancelledError:
            outbox.abort()
            raise
        except Exception as exc:
            reply = JSONRPCError(jsonrpc="2.0", id=message.id, error=modern_error_data(exc))
        failed = isinstance(reply, JSONRPCError)
        metrics.observe_operation(message.method, "stateless", failed=failed, seconds=time.perf_counter() - started)
        body = wire.dump_message(reply)
        # On an SSE answer the reply is the stream's last event.
        outbox.finish(wire.sse_frame(body))
        return reply, body

    if message.method == "subscriptions/listen":
        # A listen stream lasts as long as its client wants: each client gets a share.
        listeners = session_manager().listen_streams_per_client
        client = client_of(request, settings.proxy_hops)
        listeners.take(client)
        try:
            await _exchange(writer, answer, outbox, context, settings)
        finally:
            listeners.give_back(client)
    else:
        await _exchange(writer, answer, outbox, context, settings)


async def _serve_one(
    host: HostedServer, context: ExchangeContext, method: str, params: Mapping[str, Any] | None, connection: Connection
) -> dict[str, Any]:
    """The SDK's `serve_one`, without unwinding a connection nothing was registered on.

    The unwinding is shielded and bounded by a timer: a cancel scope, a timer
    and their bookkeeping at every request, a twentieth of a `tools/call`'s
    cost, where almost no handler registers anything. (AsyncExitStack keeps
    what was registered in `_exit_callbacks`; were that ever renamed, every
    connection would be unwound again, as the SDK does.)
    """
    runner = ServerRunner(host.server, connection, host.lifespan_state)
    try:
        return await runner.on_request(context, method, params)
    finally:
        if getattr(connection.exit_stack, "_exit_callbacks", True):
            await aclose_shielded(connection)


async def _exchange(
    writer: ResponseWriter,
    answer: Callable[[], Coroutine[Any, Any, tuple[JSONRPCResponse | JSONRPCError, bytes]]],
    outbox: SseConnection,
    context: ExchangeContext,
    settings: McpSettings,
) -> None:
    """Run the handler (`answer`) and send what it produces: JSON if it is quick and silent, else SSE."""
    handler = asyncio.get_running_loop().create_task(answer())
    try:
        # One turn of the loop first: the handler's first step runs, and most
        # handlers answer within it, so most exchanges arm no timer.
        await asyncio.sleep(0)
        quick = await outbox.wait_for_output(DISCONNECT_WATCH_AFTER)
        if not quick:
            # In this era the client closing its request is how it cancels. Watched
            # only once the handler has run this long: a client gone sooner is seen
            # then (its disconnect waits in the receive queue), and the many answers
            # ready before that cost no watcher task and no cancelling it.
            writer.on_disconnect(handler.cancel)
            await outbox.wait_for_output(settings.sse_keepalive)
        if writer.disconnected:
            return
        if handler.done() and context.notifications_sent == 0:
            reply, body = handler.result()
            status = ERROR_CODE_HTTP_STATUS.get(reply.error.code, 200) if isinstance(reply, JSONRPCError) else 200
            await send_json(writer, status, body)
        else:
            # Notifications came first, or the handler is slow: stream, ending with the answer.
            if quick:
                writer.on_disconnect(handler.cancel)
            await send_sse(writer, outbox, settings.sse_keepalive, hold=POST_STREAM_HOLD)
    finally:
        handler.cancel()


async def _send_rejection(writer: ResponseWriter, rejection: InboundLadderRejection, request_id: RequestId) -> None:
    error = wire.error_message(rejection.code, rejection.message, request_id, rejection.data)
    await send_json(writer, ERROR_CODE_HTTP_STATUS.get(rejection.code, 400), wire.dump_message(error))
