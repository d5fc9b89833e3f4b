"""The handshake era (2025-11-25 and older): sessions opened by `initialize`, named by `Mcp-Session-Id`.

POST carries one message to a session (or opens one with `initialize`), GET
opens or resumes one of its streams, DELETE ends it. Sessions live in this
process (session/); the only way to one is `_local_session`, which raises
`SessionMiss` for a session this process does not hold. A miss is then
looked up in the registry once: a session alive on another node is relayed
to it (http/relay.py), anything else gets the one 404.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp.types import JSONRPCNotification, JSONRPCRequest, jsonrpc_message_adapter
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError

from sessions_app import metrics
from sessions_app.cluster.misroute import Miss, locate_miss, log_miss
from sessions_app.cluster.routing import MissKind, session_hash
from sessions_app.conf import McpSettings
from sessions_app.http import relay, wire
from sessions_app.http.exceptions import (
    BadRequest,
    LostInFlight,
    SessionNotFound,
    StreamConflict,
    TooManyRequests,
)
from sessions_app.http.request import McpRequest, client_of, require_session_id_syntax, require_sse_accept
from sessions_app.http.sse import POST_STREAM_HOLD, SseConnection
from sessions_app.http.writer import ResponseWriter, send_json, send_sse
from sessions_app.session.close_reason import CloseReason
from sessions_app.session.event_log import EventsLost, UnknownCursor, parse_event_id
from sessions_app.session.manager import session_manager
from sessions_app.session.session import McpSession, RequestInfo, Stream

# Requests naming a session another principal opened (a leaked or guessed id).
auth_logger = logging.getLogger("sessions_app.auth")

LOST_IN_FLIGHT = (
    "Bad Gateway: the node serving this session stopped before it answered; the request may or may not have run."
    " The session carries on: send the request again if it is safe to"
)
# How many times a miss is looked up again when the owner it found changed meanwhile.
MISS_TURNS = 3
# One answer for every session no live node holds: ended, reaped, never
# existed, or died with its node. Clients recover the same way from all of them.
SESSION_NOT_FOUND = "Session not found: it ended, or no node can serve it; send initialize to start a new one"


class SessionMiss(Exception):
    """The request names a session this process does not hold."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


async def serve_handshake(
    writer: ResponseWriter, request: McpRequest, message: dict[str, Any] | None, body: bytes, settings: McpSettings
) -> None:
    """`message`: the decoded POST body (None for GET and DELETE); `body`: the bytes, for a relay."""
    try:
        await _dispatch(writer, request, message, settings)
    except SessionMiss as miss:
        if await _serve_miss(writer, request, body, miss.session_id, settings):
            # Adopted: the session is here now.
            await _dispatch(writer, request, message, settings)


async def _dispatch(
    writer: ResponseWriter, request: McpRequest, message: dict[str, Any] | None, settings: McpSettings
) -> None:
    if request.method == "POST":
        assert message is not None
        await _post(writer, request, message, settings)
    elif request.method == "GET":
        await _get(writer, request, settings)
    else:
        await _delete(writer, request)


# --- POST, GET, DELETE ------------------------------------------------------------


async def _post(writer: ResponseWriter, request: McpRequest, decoded: dict[str, Any], settings: McpSettings) -> None:
    try:
        message = jsonrpc_message_adapter.validate_python(decoded, by_name=False)
    except ValidationError:
        raise BadRequest("Invalid Request: not a JSON-RPC request, notification or response") from None
    info = RequestInfo(request.headers)
    if isinstance(message, JSONRPCRequest) and message.method == "initialize":
        client = client_of(request, settings.proxy_hops)
        reply, session_id = await session_manager().initialize(message, info, request.principal, client)
        headers = {wire.SESSION_ID_HEADER: session_id} if session_id is not None else None
        await send_json(writer, 200, wire.dump_message(reply), headers)
        return
    session = await _local_session(request)
    if not isinstance(message, JSONRPCNotification):
        session.mark_used()
    if not isinstance(message, JSONRPCRequest):
        # Notifications and the client's answers to our requests: accepted, no body.
        await session.deliver(SessionMessage(message, ServerMessageMetadata(request_context=info)))
        await send_json(writer, 202, b"")
        return
    # Counted in the session, not in open connections: a client that drops
    # its streams must not pile up handlers without bound.
    if session.pending_requests >= settings.max_requests_per_session:
        raise TooManyRequests("Too Many Requests: this session has too many requests in flight")
    try:
        stream = session.open_request_stream(message, json_response=settings.json_response)
    except KeyError:
        raise StreamConflict("Conflict: a request with this id is already in flight") from None
    async with session.busy():
        await session.deliver(SessionMessage(message, session.request_metadata(info, stream)))
        if stream.response is not None:
            await send_json(writer, 200, wire.dump_message(await stream.response))
        elif stream.connection is not None:
            await _stream(writer, session, stream, stream.connection, settings, hold=POST_STREAM_HOLD)


async def _get(writer: ResponseWriter, request: McpRequest, settings: McpSettings) -> None:
    require_sse_accept(request)
    session = await _local_session(request)
    session.mark_used()
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
    await _stream(writer, session, session.streams[stream_number], connection, settings)


async def _delete(writer: ResponseWriter, request: McpRequest) -> None:
    session = await _local_session(request)
    await session_manager().close(session.id, CloseReason.DELETE)
    await send_json(writer, 204, b"")


async def _stream(
    writer: ResponseWriter,
    session: McpSession,
    stream: Stream,
    connection: SseConnection,
    settings: McpSettings,
    *,
    hold: float = 0.0,
) -> None:
    session.touch()
    manager = session_manager()
    manager.open_streams += 1
    completed = False
    try:
        completed = await send_sse(writer, connection, settings.sse_keepalive, hold=hold)
    finally:
        manager.open_streams -= 1
        # A dropped stream is not a cancellation in this era: the session
        # keeps logging its events for a resume (within MCP_SESSION_ABANDONED_TIMEOUT).
        stream.detach(connection)
        if completed:
            session.touch()
        else:
            session.mark_dropped()


# --- the session a request names -----------------------------------------------------


async def _local_session(request: McpRequest) -> McpSession:
    """The session this request names, from this process's table only (no registry read)."""
    session_id = session_id_of(request)
    session = await session_manager().find(session_id)
    if session is None:
        raise SessionMiss(session_id)
    if session.principal != request.principal:
        # Someone else's session: the same 404 as a session that does not exist.
        auth_logger.warning(
            "%s for MCP session %s by another principal: answered 404", request.method, session_hash(session_id)
        )
        raise SessionNotFound(SESSION_NOT_FOUND)
    return session


def session_id_of(request: McpRequest) -> str:
    session_id = request.session_id
    if session_id is None:
        raise BadRequest("Bad Request: Mcp-Session-Id header is required")
    require_session_id_syntax(session_id)
    version = request.headers.get(wire.PROTOCOL_VERSION_HEADER)
    if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise BadRequest(f"Bad Request: unsupported MCP-Protocol-Version {version[:40]!r} for a session")
    return session_id


async def _serve_miss(
    writer: ResponseWriter, request: McpRequest, body: bytes, session_id: str, settings: McpSettings
) -> bool:
    """A session this process does not hold: relay the request to its live owner, adopt the
    session if its owner is gone, else 404. True if adopted (the caller serves the request).

    A relayed request that misses at its owner is a 404 at once: it was
    looked up and logged where it came in, and is never relayed again.
    """
    if request.relayed:
        raise SessionNotFound(SESSION_NOT_FOUND)
    manager = session_manager()
    # Owners change under us while nodes restart: a relay can find its owner
    # gone, a claim can lose to another node's. Each turn looks again.
    for _ in range(MISS_TURNS):
        miss = await locate_miss(session_id)
        if miss.record is not None and miss.record.principal != request.principal:
            # Neither relayed, adopted nor closed: nothing may tell that this id exists.
            log_miss(miss, "404, another principal's session")
            raise SessionNotFound(SESSION_NOT_FOUND)
        if miss.kind is MissKind.MISROUTE:
            outcome = await _relay(writer, request, body, miss, settings)
            if outcome in (relay.Outcome.RELAYED, relay.Outcome.CLIENT_LEFT):
                return False
            if outcome is relay.Outcome.LOST_IN_FLIGHT and request.method == "POST":
                # Running it again elsewhere could run a tool twice: this one
                # request is lost, as in any crash. The session is not: the
                # next request adopts it.
                log_miss(miss, outcome.value)
                raise LostInFlight(LOST_IN_FLIGHT)
            if outcome not in (relay.Outcome.OWNER_GONE, relay.Outcome.LOST_IN_FLIGHT):
                break
            # Nobody listens where the owner was: its process is gone, whatever its heartbeat says.
            miss = replace(miss, kind=MissKind.STALE, reason="owner not listening")
        if miss.kind is not MissKind.STALE or request.method == "DELETE" or miss.record is None:
            break
        if not await manager.can_adopt(miss.record, request.principal):
            break
        if await manager.adopt(miss.record) is not None:
            log_miss(miss, "adopted")
            return True
    log_miss(miss, "404")
    # Closing cleans the registry whatever happens locally: a DELETE for a
    # session whose owner is gone still removes its record.
    if request.method == "DELETE" and await session_manager().close(session_id, CloseReason.DELETE):
        await send_json(writer, 204, b"")
        return False
    raise SessionNotFound(SESSION_NOT_FOUND)


RELAY_OUTCOME_LABELS = {
    relay.Outcome.RELAYED: "relayed",
    relay.Outcome.CLIENT_LEFT: "relayed",
    relay.Outcome.OWNER_GONE: "owner_gone",
    relay.Outcome.LOST_IN_FLIGHT: "owner_gone",
    relay.Outcome.UNAVAILABLE: "unavailable",
}


async def _relay(
    writer: ResponseWriter, request: McpRequest, body: bytes, miss: Miss, settings: McpSettings
) -> relay.Outcome | None:
    """Relay the request to the live owner `miss` names (None: the relay is off)."""
    if not settings.relay or miss.record is None:
        return None
    outcome = await relay.forward(writer, request, body, miss.record)
    metrics.relays.labels(RELAY_OUTCOME_LABELS[outcome]).inc()
    if outcome in (relay.Outcome.RELAYED, relay.Outcome.CLIENT_LEFT):
        log_miss(miss, outcome.value)
    return outcome
