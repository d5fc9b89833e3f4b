"""One handshake-era MCP session, alive in this process only.

A session runs the SDK's server loop as a task. Messages from the client go in
through `deliver` (its inbox, session/inbox.py); everything the server writes is
handed straight to `_route` (no stream, no task), which puts each message on
exactly one SSE stream:

- a response, or a message tied to a request (`related_request_id`), goes on
  that request's POST stream;
- anything else goes on the standalone GET stream.

Each stream has a number; its events carry ids `"<stream>.<seq>"` and are kept
in the session's bounded `EventLog`, so a dropped stream can be resumed with
GET and `Last-Event-ID`. Nothing here touches Redis or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.runner import serve_loop
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp.types import JSONRPCError, JSONRPCMessage, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse, RequestId
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from sessions_app import metrics
from sessions_app.cluster.routing import short_id
from sessions_app.conf import McpSettings
from sessions_app.http import wire
from sessions_app.http.exceptions import SessionNotFound
from sessions_app.http.sse import SseConnection
from sessions_app.session.close_reason import CloseReason
from sessions_app.session.event_log import EventLog, event_id
from sessions_app.session.hosted_server import HostedServer
from sessions_app.session.inbox import SessionInbox

logger = logging.getLogger(__name__)

# JSON-RPC error code for a request cancelled before its answer (the SDK keeps
# it private to its own transport).
REQUEST_CANCELLED = -32800
STANDALONE_STREAM = 0
# Channel-layer message type that asks a session's owner to close it.
CLOSE_MESSAGE = "mcp.session.close"
# What a request still waiting on a session that closes is answered (404: the session is gone).
CLOSED_BEFORE_ANSWER = "Session closed before the request was answered"
# Frames an SSE connection may have queued before it counts as stuck.
MAX_PENDING_FRAMES = 256
# Characters kept of the client's name and version (they go into the registry record).
MAX_CLIENT_FIELD = 200
# What a client can make its session's record hold (the continuation state,
# see registry/base.py). A session that outgrows it keeps working here, but
# is not adoptable by another node.
MAX_RECORDED_CLIENT_BYTES = 4096
MAX_RECORDED_SUBSCRIPTIONS = 100
MAX_RECORDED_URI = 2048
# The requests whose success changes the continuation state.
CONTINUATION_METHODS = frozenset({"logging/setLevel", "resources/subscribe", "resources/unsubscribe"})


@dataclass(frozen=True)
class RequestInfo:
    """What a handler can learn about the HTTP request that carried its message (`ctx.request`)."""

    headers: dict[str, str]


@dataclass
class Stream:
    """One logical SSE stream of the session: a POST's answer, or the standalone GET stream."""

    number: int
    request_id: RequestId | None
    next_seq: int = 1
    connection: SseConnection | None = None
    # JSON-response mode: the single response, instead of a connection.
    response: asyncio.Future[JSONRPCMessage] | None = None
    finished: bool = False
    # A request that changes the continuation state, applied once it succeeds.
    change: tuple[str, dict[str, Any]] | None = None
    # The request it answers, and when it came (perf_counter), for the operation metric.
    method: str = ""
    started: float = 0.0

    @property
    def request_key(self) -> str | None:
        return None if self.request_id is None else str(self.request_id)

    def detach(self, connection: SseConnection) -> None:
        if self.connection is connection:
            self.connection = None


# Slots: with its 38 attributes an instance dictionary would outgrow the keys
# Python shares between instances and cost every idle session 2 KiB.
@dataclass(slots=True)
class McpSession:
    id: str
    settings: McpSettings
    host: HostedServer
    # Asks the session manager to close this session (it schedules the close,
    # so the session's own task never waits on itself).
    request_close: Callable[[McpSession, CloseReason], None]
    # The channel-layer channel other processes reach this session on ("" without a layer).
    channel_name: str = ""
    created_at: float = field(default_factory=time.time)
    protocol_version: str = ""
    client_name: str = ""
    client_version: str = ""
    # The rest of the continuation state (registry/base.py SessionRecord). The
    # client's info and capabilities as compact JSON, [info, capabilities]: they
    # are only ever recorded, and as nested dicts they cost every idle session
    # a kilobyte or more.
    client_json: str = "[{},{}]"
    log_level: str = ""
    subscriptions: list[str] = field(default_factory=list)
    adoptable: bool = True
    adopted_from: str = ""
    # Who opened it (auth/principal.py `Principal.key`; "" with authorization off):
    # every later request must come from the same principal.
    principal: str = ""
    # Whom fair admission counts it against (http/request.py `client_of`).
    client: str = ""
    # For the reaper's shorter timers (`expiry`): a request since initialize;
    # a stream dropped by its client, and nothing from it since.
    used: bool = False
    dropped: bool = False
    # Called when a request changed the continuation state (the manager records it again).
    on_state_change: Callable[[McpSession], None] = lambda session: None
    # Stream numbers and the standalone stream's sequence start after this:
    # 0 for a new session; for an adopted one, the adoption time in
    # milliseconds, so its event ids sort after every id of its previous life.
    epoch: int = 0
    in_flight: int = 0
    # Set once the session's record was handed to the registry.
    published: bool = False
    last_active: float = field(default_factory=time.monotonic)
    # Made in __post_init__:
    _inbox: SessionInbox[SessionMessage | Exception] = field(init=False, repr=False)
    _outgoing: _RouteOnSend = field(init=False, repr=False)
    log: EventLog = field(init=False, repr=False)
    streams: dict[int, Stream] = field(init=False, repr=False)
    # Streams of requests still waiting for their answer, by str(request id).
    _by_request: dict[str, Stream] = field(init=False, repr=False)
    # Answered streams stay resumable until this many newer ones were answered.
    # A list, not a deque: it is short, and an empty deque costs 624 bytes in
    # every idle session.
    _answered: list[int] = field(init=False, repr=False)
    _next_stream: int = field(init=False, repr=False)
    # Adopted: resources/updated for each subscription, sent once a standalone stream attaches.
    _updates_owed: list[JSONRPCNotification] = field(init=False, repr=False)
    _task: asyncio.Task[None] | None = field(init=False, repr=False)
    closed: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Each message carries its sender's context, and the SDK runs its handler in it (as with the
        # SDK's own transports): the handler's log records name the request that brought the message
        # (http/log_context.py), not the `initialize` that started the session's task.
        self._inbox = SessionInbox()
        self._outgoing = _RouteOnSend(self._route)
        self.log = EventLog(self.settings.event_log_max_events, self.settings.event_log_max_bytes)
        self.streams = {STANDALONE_STREAM: Stream(STANDALONE_STREAM, None, self.epoch + 1)}
        self._by_request = {}
        self._answered = []
        self._next_stream = self.epoch + 1
        self._updates_owed = []
        self._task = None
        self.closed = False

    # --- lifecycle -------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp-session-{short_id(self.id)}")

    async def _run(self) -> None:
        try:
            await serve_loop(
                self.host.server,
                self._inbox,
                self._outgoing,
                lifespan_state=self.host.lifespan_state,
                session_id=self.id,
            )
        except Exception:
            logger.exception("MCP session %s crashed", short_id(self.id))
        finally:
            if not self.closed:
                # The server loop ended on its own (crash, or the SDK closed it):
                # the session is over, and the manager must forget it.
                self.request_close(self, CloseReason.SERVER_ENDED)

    async def stop(self, *, final_frame: bytes | None = None) -> None:
        """Free everything the session holds: its task, its streams, its log.

        Only the session manager calls this, after forgetting the session, so
        no new request can reach it while it winds down.
        """
        self.closed = True
        for stream in self.streams.values():
            if stream.connection is not None:
                stream.connection.finish(final_frame)
                stream.connection = None
            if stream.response is not None and not stream.response.done():
                stream.response.set_exception(SessionNotFound(CLOSED_BEFORE_ANSWER))
        self.streams.clear()
        self._by_request.clear()
        self.log.clear()
        self._inbox.close()
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def pending_requests(self) -> int:
        """Requests not answered yet, whether or not their client is still connected."""
        return len(self._by_request)

    @property
    def live_connections(self) -> int:
        return sum(1 for stream in self.streams.values() if stream.connection is not None)

    def expiry(self, now: float) -> CloseReason | None:
        """Why the reaper should close this session now, if it should: three timers, by how it was used.

        Nothing runs on a session that has a request in flight or a stream
        open. Otherwise, counted from its last activity: a session that made
        no request since `initialize` goes after MCP_SESSION_UNUSED_TIMEOUT,
        one whose client dropped its streams and sent nothing since after
        MCP_SESSION_ABANDONED_TIMEOUT, any other after MCP_SESSION_IDLE_TIMEOUT.
        """
        if self.in_flight or self.live_connections:
            return None
        quiet = now - self.last_active
        if not self.used and quiet > self.settings.session_unused_timeout:
            return CloseReason.UNUSED
        if self.dropped and quiet > self.settings.session_abandoned_timeout:
            return CloseReason.ABANDONED
        if quiet > self.settings.session_idle_timeout:
            return CloseReason.IDLE
        return None

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def mark_used(self) -> None:
        """A request, or a stream opened: the client is here (clears an earlier drop)."""
        self.used = True
        self.dropped = False
        self.touch()

    def mark_dropped(self) -> None:
        """A stream ended because its client went away, not because it was done."""
        self.dropped = True
        self.touch()

    @contextlib.asynccontextmanager
    async def busy(self) -> AsyncIterator[None]:
        """While one of this session's requests is served: the idle reaper leaves the session alone."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.touch()

    def accept_initialize(self, params: Mapping[str, Any]) -> None:
        """Note what `initialize` negotiated: the protocol version, who the client is, what it can do."""
        requested = params.get("protocolVersion")
        self.protocol_version = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        client = params.get("clientInfo")
        capabilities = params.get("capabilities")
        info = dict(client) if isinstance(client, Mapping) else {}
        self.client_name = str(info.get("name", ""))[:MAX_CLIENT_FIELD]
        self.client_version = str(info.get("version", ""))[:MAX_CLIENT_FIELD]
        recorded = [info, dict(capabilities) if isinstance(capabilities, Mapping) else {}]
        self.client_json = json.dumps(recorded, default=str, separators=(",", ":"))
        if len(self.client_json) > MAX_RECORDED_CLIENT_BYTES:
            self._outgrow_record("client info and capabilities")

    @property
    def client_info(self) -> dict[str, Any]:
        return dict(json.loads(self.client_json)[0])

    @property
    def client_capabilities(self) -> dict[str, Any]:
        return dict(json.loads(self.client_json)[1])

    def _apply_change(self, method: str, params: dict[str, Any]) -> None:
        """A continuation-state request succeeded: remember its effect, and have the record rewritten."""
        if method == "logging/setLevel":
            self.log_level = str(params.get("level", ""))[:MAX_CLIENT_FIELD]
        else:
            uri = str(params.get("uri", ""))
            if method == "resources/unsubscribe":
                if uri in self.subscriptions:
                    self.subscriptions.remove(uri)
            elif uri not in self.subscriptions:
                if len(uri) > MAX_RECORDED_URI or len(self.subscriptions) >= MAX_RECORDED_SUBSCRIPTIONS:
                    self._outgrow_record("subscriptions")
                else:
                    self.subscriptions.append(uri)
        self.on_state_change(self)

    def _outgrow_record(self, what: str) -> None:
        if self.adoptable:
            logger.warning(
                "MCP session %s outgrew its record (%s): no other node can adopt it", short_id(self.id), what
            )
        self.adoptable = False

    def owe_updates(self, uris: list[str], *, list_changed: bool) -> None:
        """After an adoption: tell the client these resources (and the list) may have changed, once it listens."""
        self._updates_owed = [
            JSONRPCNotification(jsonrpc="2.0", method="notifications/resources/updated", params={"uri": uri})
            for uri in uris
        ]
        if list_changed:
            self._updates_owed.append(JSONRPCNotification(jsonrpc="2.0", method="notifications/resources/list_changed"))

    # --- inbound ---------------------------------------------------------

    def open_request_stream(self, request: JSONRPCRequest, *, json_response: bool) -> Stream:
        """Register the stream that will carry `request`'s answer (raises KeyError on a duplicate id)."""
        key = str(request.id)
        if key in self._by_request:
            raise KeyError(key)
        stream = Stream(self._next_stream, request.id, method=request.method, started=time.perf_counter())
        self._next_stream += 1
        if request.method in CONTINUATION_METHODS:
            stream.change = (request.method, dict(request.params or {}))
        if json_response:
            stream.response = asyncio.get_running_loop().create_future()
        else:
            stream.connection = SseConnection(MAX_PENDING_FRAMES)
            if self.resumable:
                stream.connection.push(wire.priming_frame(event_id(stream.number, 0), self.settings.sse_retry_ms))
        self.streams[stream.number] = stream
        self._by_request[key] = stream
        return stream

    def open_standalone_stream(self) -> SseConnection | None:
        """Attach a GET connection to the standalone stream; None if one is already open."""
        stream = self.streams[STANDALONE_STREAM]
        if stream.connection is not None and stream.connection.open:
            return None
        connection = SseConnection(MAX_PENDING_FRAMES)
        if self.resumable:
            connection.push(wire.priming_frame(event_id(STANDALONE_STREAM, self.epoch), self.settings.sse_retry_ms))
        stream.connection = connection
        self._pay_owed_updates()
        return connection

    def resume_stream(self, stream_number: int, after_seq: int) -> SseConnection:
        """A new connection that replays `stream_number` after `after_seq`, then carries it live.

        Raises KeyError for a stream this session does not have and
        `event_log.EventsLost` when the log no longer holds what was missed.
        """
        stream = self.streams[stream_number]
        missed = list(self.log.after(stream_number, after_seq))
        connection = SseConnection(MAX_PENDING_FRAMES + len(missed))
        for frame in missed:
            connection.push(frame)
        if stream.finished:
            connection.finish()
        else:
            if stream.connection is not None:
                # The old connection is presumably half-open; the newer one wins.
                stream.connection.abort()
            stream.connection = connection
            if stream_number == STANDALONE_STREAM:
                self._pay_owed_updates()
        metrics.replays.inc()
        return connection

    def _pay_owed_updates(self) -> None:
        """The standalone stream attached after an adoption: a change made while no node held the
        session must not go unnoticed, so every subscribed resource is reported as updated."""
        owed, self._updates_owed = self._updates_owed, []
        for update in owed:
            self._route(SessionMessage(update))

    def request_metadata(self, info: RequestInfo, stream: Stream | None) -> ServerMessageMetadata:
        """The metadata the server loop sees on a message from this request."""
        can_resume = stream is not None and stream.connection is not None and self.resumable
        request_key = stream.request_key if stream is not None else None
        return ServerMessageMetadata(
            request_context=info,
            close_sse_stream=(lambda: self._close_stream_connection(request_key)) if can_resume else None,
            close_standalone_sse_stream=(lambda: self._close_stream_connection(None)) if self.resumable else None,
            on_request_unanswered=(lambda: self._answer_cancelled(request_key)) if request_key else None,
            can_send_request=stream is not None and stream.connection is not None,
        )

    async def deliver(self, message: SessionMessage) -> None:
        try:
            await self._inbox.send(message)
        except anyio.ClosedResourceError:
            raise SessionNotFound(CLOSED_BEFORE_ANSWER) from None

    @property
    def resumable(self) -> bool:
        # Priming events and stream closes arrived with 2025-11-25; older
        # clients would choke on an empty data line.
        return self.protocol_version >= "2025-11-25"

    async def _close_stream_connection(self, request_key: str | None) -> None:
        stream = self._by_request.get(request_key) if request_key else self.streams.get(STANDALONE_STREAM)
        if stream is not None and stream.connection is not None:
            stream.connection.finish(wire.retry_frame(self.settings.sse_retry_ms))
            stream.connection = None

    async def _answer_cancelled(self, request_key: str | None) -> None:
        stream = self._by_request.get(request_key or "")
        if stream is None or stream.finished:
            return
        # The handshake-era wire ends a request's stream only with a response,
        # so a cancelled request is answered with an error instead of silence.
        error = wire.error_message(REQUEST_CANCELLED, "Request cancelled", request_id=stream.request_id)
        await self._outgoing.send(SessionMessage(error))

    # --- outbound --------------------------------------------------------

    def _route(self, outgoing: SessionMessage) -> None:
        message = outgoing.message
        is_answer = isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None
        related = outgoing.metadata.related_request_id if isinstance(outgoing.metadata, ServerMessageMetadata) else None
        key = str(message.id) if is_answer else (str(related) if related is not None else None)  # type: ignore[union-attr]
        stream = self._by_request.get(key) if key is not None else None
        if stream is None or stream.finished:
            stream = self.streams[STANDALONE_STREAM]
            is_answer = False
        if stream.response is not None:
            # JSON-response mode: only the answer has a place on the wire.
            if is_answer:
                self._finish(stream, message)
                if not stream.response.done():
                    stream.response.set_result(message)
            return
        seq = stream.next_seq
        stream.next_seq += 1
        frame = wire.sse_frame(wire.dump_message(message), event_id(stream.number, seq))
        self.log.append(stream.number, seq, frame)
        if is_answer:
            self._finish(stream, message)
            if stream.connection is not None:
                stream.connection.finish(frame)
                stream.connection = None
        elif stream.connection is not None and not stream.connection.push(frame):
            stream.connection = None

    def _finish(self, stream: Stream, answer: JSONRPCMessage) -> None:
        """The request is answered: its id is free again; its stream stays resumable for a while."""
        stream.finished = True
        if stream.started:
            failed = not isinstance(answer, JSONRPCResponse)
            metrics.observe_operation(
                stream.method, "handshake", failed=failed, seconds=time.perf_counter() - stream.started
            )
        if stream.change is not None and isinstance(answer, JSONRPCResponse):
            self._apply_change(*stream.change)
        self._by_request.pop(stream.request_key or "", None)
        self._answered.append(stream.number)
        while len(self._answered) > self.settings.event_log_max_events:
            expired = self._answered.pop(0)
            self.streams.pop(expired, None)
            self.log.forget_stream(expired)


class _RouteOnSend:
    """The session's write stream (the SDK's `WriteStream` protocol): each message is routed as it is sent.

    Routing never waits, so a memory stream and a task draining it would only
    add a task switch per message and a few KiB per idle session.
    """

    def __init__(self, route: Callable[[SessionMessage], None]) -> None:
        self._route = route
        self._closed = False

    async def send(self, item: SessionMessage, /) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        self._route(item)

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> _RouteOnSend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
