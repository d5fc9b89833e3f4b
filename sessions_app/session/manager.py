"""This process's table of live handshake-era sessions, and the one way they end.

The manager admits new sessions (up to MCP_MAX_SESSIONS), finds them by id,
reaps idle ones, and closes sessions through one path, `close`, whoever asks:
DELETE, the idle reaper, the admin, the management command, a message from
another node, the server loop ending, and shutdown. Ordering rules that
matter under concurrency:

- a session enters the table with its first request and leaves it before
  `close` awaits anything, so an id either answers or 404s, never half of each;
- `close` is idempotent: the first caller frees the session, later ones find
  nothing to do;
- the registry record is deleted whatever happened locally: a local stop that
  raises is logged and the record still goes, and a session this process does
  not hold (another node's, or a previous life's) is closed by a message to its
  owner's channel and its record deleted here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from channels.layers import get_channel_layer
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCError, JSONRPCMessage, JSONRPCRequest

from sessions_app import metrics
from sessions_app.cluster.node import ClusterNode, this_node
from sessions_app.cluster.registry import RegistryUnavailable, SessionRecord
from sessions_app.cluster.routing import new_session_id, short_id
from sessions_app.cluster.shutdown import install_sigterm_drain
from sessions_app.conf import McpSettings, mcp_settings
from sessions_app.http.exceptions import NodeFull
from sessions_app.http.wire import retry_frame
from sessions_app.session.admission import ClientQuota
from sessions_app.session.adoption import AdoptionFailed, restore
from sessions_app.session.close_reason import CloseReason
from sessions_app.session.hosted_server import HostedServer, hosted_server
from sessions_app.session.session import CLOSE_MESSAGE, McpSession, RequestInfo

logger = logging.getLogger(__name__)

# How long closing a session held elsewhere waits for its record to be deleted.
REMOTE_CLOSE_WAIT = 2.0
# How long an `initialize` answer waits for the new session's record to be written.
RECORD_BEFORE_ANSWER_WAIT = 1.0
# How long rebuilding an adopted session may take before it is given up.
ADOPTION_TIMEOUT = 10.0
# How often a hand-off looks whether requests in flight have finished.
HANDOFF_POLL = 0.05


class SessionManager:
    def __init__(self, settings: McpSettings, node: ClusterNode) -> None:
        self.settings = settings
        self.node = node
        self._sessions: dict[str, McpSession] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[bool]] = set()
        self._drain_installed = False
        # SSE responses being written (handshake._stream), from sockets or relayed.
        self.open_streams = 0
        # Requests relayed here from other nodes and not answered yet (endpoint.serve).
        self.relayed_in = 0
        # Sessions being adopted, by id: requests for them wait for the outcome.
        self._adopting: dict[str, asyncio.Future[McpSession | None]] = {}
        # Each client's share of this process (admission.py).
        self.sessions_per_client = ClientQuota("sessions", settings.max_sessions_per_client)
        self.listen_streams_per_client = ClientQuota("listen streams", settings.max_listen_streams_per_client)
        # This process's one channel-layer channel for messages to its sessions (a close
        # from another node), opened with the first session; one per session would
        # cost each idle session a receive queue and a task (about 3 KiB).
        self._channel: asyncio.Task[str] | None = None
        self._channel_listener: asyncio.Task[None] | None = None
        node.on_store_lost = self.publish_all

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> McpSession | None:
        return self._sessions.get(session_id)

    def sessions(self) -> list[McpSession]:
        return list(self._sessions.values())

    @property
    def full(self) -> bool:
        return len(self._sessions) >= self.settings.max_sessions

    async def create(self, client: str = "") -> McpSession:
        """A new session for `client` (http/request.py `client_of`), counted against its share."""
        if self.node.draining:
            raise NodeFull("Service Unavailable: this node is shutting down", headers={"Retry-After": "1"})
        if self.full:
            logger.warning("Refusing a new MCP session: %d sessions are open", len(self._sessions))
            raise NodeFull("Service Unavailable: this node holds its maximum of sessions", headers={"Retry-After": "5"})
        self.sessions_per_client.take(client)
        self.start()
        host = await hosted_server()
        channel_name = await self._session_channel()
        session = McpSession(
            new_session_id(self.settings.node_route),
            self.settings,
            host,
            self.close_soon,
            channel_name,
            on_state_change=self._state_changed,
            client=client,
        )
        self._sessions[session.id] = session
        session.start()
        self._ensure_reaper()
        metrics.sessions_opened.inc()
        return session

    async def find(self, session_id: str) -> McpSession | None:
        """The session, if this process holds it or is adopting it right now (then once it is ready)."""
        session = self._sessions.get(session_id)
        if session is not None:
            return session
        adopting = self._adopting.get(session_id)
        return await asyncio.shield(adopting) if adopting is not None else None

    async def can_adopt(self, record: SessionRecord, principal: str) -> bool:
        """Whether this node may adopt, for a request from `principal`, the session `record` describes."""
        # Never across principals: a session is bound to whoever created it.
        return record.principal == principal and self.may_adopt(await hosted_server(), record)

    def may_adopt(self, host: HostedServer, record: SessionRecord) -> bool:
        return (
            self.settings.adoption
            and host.adoptable
            and record.adoptable
            and not self.node.draining
            and len(self._sessions) < self.settings.max_sessions
        )

    async def adopt(self, record: SessionRecord) -> McpSession | None:
        """Continue here the session `record` describes, whose owner is gone (session/adoption.py).

        The record is claimed atomically: of several nodes adopting one
        session at once, one gets it and the others get None (and relay to
        the winner); None also when this node may not adopt it (`may_adopt`)
        or its server would not take it back. Requests that arrive here
        meanwhile wait (`find`).
        """
        if (session := await self.find(record.session_id)) is not None:
            return session
        done: asyncio.Future[McpSession | None] = asyncio.get_running_loop().create_future()
        self._adopting[record.session_id] = done
        try:
            session = await self._adopt(record)
        except BaseException:
            done.set_result(None)
            raise
        finally:
            del self._adopting[record.session_id]
        done.set_result(session)
        return session

    async def _adopt(self, record: SessionRecord) -> McpSession | None:
        self.start()
        host = await hosted_server()
        if not self.may_adopt(host, record):
            return None
        channel_name = await self._session_channel()
        session = McpSession(
            record.session_id,
            self.settings,
            host,
            self.close_soon,
            channel_name,
            created_at=record.created_at,
            adopted_from=record.node_id,
            epoch=int(time.time() * 1000),
            principal=record.principal,
            # Counted, never refused: adoption continues sessions, it admits none.
            client=f"principal {record.principal}" if record.principal else "",
            used=True,
        )
        claimed = replace(record.owned_by(self.node.node_id, self.node.boot_id), channel_name=channel_name)
        try:
            won = await self.node.registry.aclaim(claimed, record.node_id, record.boot_id)
        except RegistryUnavailable as exc:
            logger.warning("Cannot adopt MCP session %s: %s", short_id(record.session_id), exc)
            return None
        if not won:
            return None
        self._sessions[session.id] = session
        self.sessions_per_client.add(session.client)
        session.start()
        self._ensure_reaper()
        try:
            async with asyncio.timeout(ADOPTION_TIMEOUT):
                await restore(session, record)
        except (AdoptionFailed, TimeoutError) as exc:
            logger.warning(
                "Adopting MCP session %s failed (%s); it ends", short_id(record.session_id), exc or "timeout"
            )
            session.published = True  # the claim wrote its record: the close deletes it
            await self.close(session.id, CloseReason.ADOPTION_FAILED)
            return None
        session.published = True
        session.on_state_change = self._state_changed
        metrics.adoptions.inc()
        logger.warning(
            "Adopted MCP session %s from node %s (boot %s) on node %s",
            short_id(record.session_id),
            record.node_id,
            record.boot_id,
            self.node.node_id,
        )
        return session

    async def initialize(
        self, message: JSONRPCRequest, info: RequestInfo, principal: str = "", client: str = ""
    ) -> tuple[JSONRPCMessage, str | None]:
        """Open a session with `initialize`: the server's answer, and the new session's id.

        The id comes back only with a successful answer: a refused or
        interrupted initialize closes the session again, so it never hands out
        an id. The answer is always one JSON message.

        The answer waits for the session's registry record (one write, up to
        RECORD_BEFORE_ANSWER_WAIT): a client that keeps no cookies may send its
        next request to any node, and another node knows the session only from
        its record. While the registry is unreachable nobody could read the
        record anyway, so the answer does not wait.
        """
        session = await self.create(client)
        session.principal = principal
        session.accept_initialize(message.params or {})
        stream = session.open_request_stream(message, json_response=True)
        assert stream.response is not None
        async with session.busy():
            try:
                await session.deliver(SessionMessage(message, session.request_metadata(info, stream)))
                reply = await stream.response
            except BaseException:
                await self.close(session.id, CloseReason.INITIALIZE_FAILED)
                raise
        if isinstance(reply, JSONRPCError):
            await self.close(session.id, CloseReason.INITIALIZE_FAILED)
            return reply, None
        self.publish(session)
        if not self.node.writer.store_unreachable:
            await self.node.writer.settled(session.id, RECORD_BEFORE_ANSWER_WAIT)
        return reply, session.id

    async def _session_channel(self) -> str:
        """The channel other nodes send this process's sessions messages on ("" without a channel layer)."""
        if get_channel_layer() is None:
            return ""
        if self._channel is None:
            self._channel = asyncio.get_running_loop().create_task(self._open_channel())
        return await asyncio.shield(self._channel)

    async def _open_channel(self) -> str:
        layer = get_channel_layer()
        # Every process-local channel must share the default prefix: the core
        # Redis layer reads all of them with one blocking pop on one key per
        # prefix, so a second prefix in the same process starves.
        channel = str(await layer.new_channel())
        self._channel_listener = asyncio.get_running_loop().create_task(
            self._listen_channel(layer, channel), name="mcp-session-channel"
        )
        return channel

    async def _listen_channel(self, layer: Any, channel: str) -> None:
        """Take messages for this process's sessions from the channel layer, for as long as it lives.

        The layer may be Redis, and Redis may go away: that must not end the
        listening, so failures are logged once and retried with a back-off.
        """
        delay = 0.0
        while True:
            try:
                message = await layer.receive(channel)
            except Exception as exc:
                if delay == 0.0:
                    logger.warning("MCP sessions cannot reach the channel layer (%s); retrying", exc)
                delay = min(max(delay * 2, 0.2), 5.0)
                await asyncio.sleep(delay)
                continue
            delay = 0.0
            session = self._sessions.get(str(message.get("session", "")))
            if message.get("type") != CLOSE_MESSAGE:
                logger.warning("MCP sessions ignored a channel message of type %r", message.get("type"))
            elif session is not None:
                self.close_soon(session, CloseReason.from_message(message.get("reason")))

    def start(self) -> None:
        """Start the node's background services, and the SIGTERM drain of this process's sessions (idempotent)."""
        self.node.start()
        if self.node.handle_sigterm and not self._drain_installed:
            self._drain_installed = True
            install_sigterm_drain(self)

    def publish(self, session: McpSession) -> None:
        """Record an established session in the registry (one write, made in the background)."""
        session.published = True
        self.node.writer.add(self._record_of(session))

    def _record_of(self, session: McpSession) -> SessionRecord:
        return SessionRecord(
            session_id=session.id,
            node_id=self.node.node_id,
            boot_id=self.node.boot_id,
            channel_name=session.channel_name,
            created_at=session.created_at,
            protocol_version=session.protocol_version,
            client_name=session.client_name,
            client_version=session.client_version,
            client_info=session.client_info,
            client_capabilities=session.client_capabilities,
            log_level=session.log_level,
            subscriptions=tuple(session.subscriptions),
            adoptable=session.adoptable,
            adopted_from=session.adopted_from,
            principal=session.principal,
        )

    def _state_changed(self, session: McpSession) -> None:
        """A request changed what the session's record carries: write it again (only then)."""
        if session.published and self._sessions.get(session.id) is session:
            self.publish(session)

    def publish_all(self) -> None:
        """Write every established session's record again (the registry lost them)."""
        for session in self._sessions.values():
            if session.published:
                self.publish(session)

    async def close(self, session_id: str, reason: CloseReason) -> bool:
        """End a session wherever it lives. Returns False if nobody knew it."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return await self._close_elsewhere(session_id, reason)
        self.sessions_per_client.give_back(session.client)
        logger.info("Closing MCP session %s: %s", short_id(session_id), reason)
        metrics.sessions_closed.labels(reason.label).inc()
        metrics.session_duration.labels(reason.label).observe(max(time.time() - session.created_at, 0.0))
        try:
            await session.stop(final_frame=retry_frame(self.settings.sse_retry_ms))
        except Exception:
            logger.exception("MCP session %s did not stop cleanly; its record goes anyway", short_id(session_id))
        if session.published:
            self.node.writer.remove(session_id)
        return True

    async def _close_elsewhere(self, session_id: str, reason: CloseReason) -> bool:
        try:
            record = await self.node.registry.aget(session_id)
        except RegistryUnavailable as exc:
            logger.warning("Cannot look up MCP session %s to close it: %s", short_id(session_id), exc)
            record = None
        if record is not None and record.channel_name:
            layer = get_channel_layer()
            try:
                if layer is not None:
                    message = {"type": CLOSE_MESSAGE, "session": session_id, "reason": reason}
                    await layer.send(record.channel_name, message)
            except Exception:
                logger.exception("Could not ask node %s to close MCP session %s", record.node_id, short_id(session_id))
        self.node.writer.remove(session_id)
        await self.node.writer.settled(session_id, REMOTE_CLOSE_WAIT)
        return record is not None

    async def can_hand_off(self) -> bool:
        """Whether shutdown may leave this process's sessions to be adopted instead of closing them."""
        host = await hosted_server()
        return self.settings.shutdown_handoff and self.settings.adoption and host.adoptable

    async def hand_off(self, within: float) -> None:
        """On shutdown, leave every session to be adopted by another node (MCP_SHUTDOWN_HANDOFF).

        Requests in flight finish first (for up to `within` seconds). Then
        this node stops listening and heartbeating, so the others see its
        sessions orphaned and adopt them on their next request; then each
        session's streams end with a `retry:` hint. Records stay.
        """
        deadline = time.monotonic() + within
        if not await _poll_until(
            lambda: not any(s.in_flight or s.pending_requests for s in self._sessions.values()), deadline
        ):
            logger.warning("Shutdown: handing off with requests still in flight")
        await self.node.writer.drain(within=max(deadline - time.monotonic(), 0.1))
        await self.node.leave()
        sessions, self._sessions = self._sessions, {}
        self.sessions_per_client.clear()
        for session in sessions.values():
            try:
                await session.stop(final_frame=retry_frame(self.settings.sse_retry_ms))
            except Exception:
                logger.exception("MCP session %s did not stop cleanly while handed off", short_id(session.id))
        # The streams just ended still have their last piece (the retry: hint)
        # to write, and requests relayed here their answer to send back: let
        # them, before exit. An edge waiting for an answer that never comes
        # would only notice after MCP_NODE_HEARTBEAT_TTL, and answer 502.
        await _poll_until(lambda: not self.open_streams and not self.relayed_in, deadline)
        logger.warning("Handed off %d MCP sessions for adoption", len(sessions))

    async def close_all(self, reason: CloseReason) -> None:
        await asyncio.gather(*(self.close(session_id, reason) for session_id in list(self._sessions)))

    def close_soon(self, session: McpSession, reason: CloseReason) -> None:
        """Close `session` from a task of its own (for callers inside the session)."""
        if self._sessions.get(session.id) is not session:
            return
        task = asyncio.get_running_loop().create_task(self.close(session.id, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle(), name="mcp-idle-reaper")

    async def _reap_idle(self) -> None:
        shortest = min(
            self.settings.session_idle_timeout,
            self.settings.session_unused_timeout,
            self.settings.session_abandoned_timeout,
        )
        interval = min(max(shortest / 4, 0.05), 30.0)
        while self._sessions:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if reason := session.expiry(now):
                    await self.close(session.id, reason)


async def _poll_until(done: Callable[[], bool], deadline: float) -> bool:
    """Wait until `done()` or the monotonic `deadline`; False if the deadline came first.

    For shutdown only: the counts it watches are kept by many places, and a
    poll every HANDOFF_POLL for a second or two costs nothing.
    """
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(HANDOFF_POLL)
    return True


_manager: SessionManager | None = None


def session_manager() -> SessionManager:
    """This process's manager, created on first use (and anew after settings change in tests)."""
    global _manager
    settings = mcp_settings()
    if _manager is None or _manager.settings is not settings:
        _manager = SessionManager(settings, this_node())
    return _manager
