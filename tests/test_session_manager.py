"""This process's session table: admission up to the cap, one closing path, idle reaping."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from django.test import override_settings
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCRequest

from sessions_app.cluster.node import ClusterNode
from sessions_app.cluster.registry import SessionRecord
from sessions_app.cluster.registry.locmem import LocMemSessionRegistry
from sessions_app.cluster.registry.redis import RedisSessionRegistry
from sessions_app.cluster.routing import short_id
from sessions_app.conf import McpSettings
from sessions_app.http.exceptions import NodeFull, SessionNotFound
from sessions_app.http.wire import retry_frame
from sessions_app.session.close_reason import CloseReason
from sessions_app.session.manager import SessionManager
from sessions_app.session.session import STANDALONE_STREAM, McpSession, RequestInfo
from tests.redis_server import RedisServer, redis_cache

IDLE_TIMEOUT = 0.05
# How long a poll waits for something the reaper should do within a few of its passes.
PATIENCE = 5.0


SETTINGS = McpSettings(
    server="sessions_app.echo_server.server",
    node_id="test-node",
    node_route="t1",
    allowed_origins=("http://localhost",),
    allowed_hosts=("localhost",),
    max_sessions=3,
    # Long, so sessions are only reaped in the tests about reaping.
    session_idle_timeout=3600.0,
    max_body_bytes=1024 * 1024,
    max_requests_per_session=8,
    event_log_max_events=16,
    event_log_max_bytes=64 * 1024,
    sse_retry_ms=1000,
    sse_keepalive=15.0,
    json_response=False,
    node_heartbeat_ttl=10.0,
    reaper_interval=30.0,
    stale_grace=60.0,
    shutdown_drain_delay=0.0,
    shutdown_grace=5.0,
)


def local_node(settings: McpSettings) -> ClusterNode:
    """A cluster node with an in-process registry, as on a development node."""
    return ClusterNode(settings, LocMemSessionRegistry(session_ttl=60.0, node_ttl=10.0), handle_sigterm=False)


@pytest.fixture
async def manager() -> AsyncIterator[SessionManager]:
    manager = SessionManager(SETTINGS, local_node(SETTINGS))
    yield manager
    await manager.close_all(CloseReason.SHUTDOWN)
    await manager.node.stop()


@pytest.fixture
async def reaping_manager() -> AsyncIterator[SessionManager]:
    settings = dataclasses.replace(SETTINGS, session_idle_timeout=IDLE_TIMEOUT)
    manager = SessionManager(settings, local_node(settings))
    yield manager
    await manager.close_all(CloseReason.SHUTDOWN)
    await manager.node.stop()


def session_tasks(session: McpSession) -> list[asyncio.Task[object]]:
    """The live tasks named for `session` (McpSession.start names them mcp-session-<short id>)."""
    name = f"mcp-session-{short_id(session.id)}"
    return [task for task in asyncio.all_tasks() if task.get_name() == name and not task.done()]


async def eventually(condition: Callable[[], bool], within: float = PATIENCE) -> bool:
    """Poll `condition` until it holds or `within` seconds pass; whether it came to hold."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


INITIALIZE = JSONRPCRequest(
    jsonrpc="2.0",
    id=1,
    method="initialize",
    params={"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "unit", "version": "1"}},
)


async def initialize_over_sse(session: McpSession) -> list[bytes]:
    """Run an initialize request through the session on an SSE stream; the frames it wrote."""
    request = INITIALIZE
    stream = session.open_request_stream(request, json_response=False)
    assert stream.connection is not None
    await session.deliver(SessionMessage(request, session.request_metadata(RequestInfo({}), stream)))
    async with asyncio.timeout(PATIENCE):
        return [frame async for frame, _last in stream.connection.frames(keepalive=60.0) if frame]


# --- create --------------------------------------------------------------------


async def test_create_registers_the_session_and_starts_its_task(manager: SessionManager) -> None:
    session = await manager.create()

    assert manager.get(session.id) is session
    assert manager.sessions() == [session]
    assert len(manager) == 1
    assert len(session_tasks(session)) == 1
    assert not session.closed


async def test_created_sessions_have_distinct_visible_ascii_ids(manager: SessionManager) -> None:
    first = await manager.create()
    second = await manager.create()

    assert first.id != second.id
    for session_id in (first.id, second.id):
        assert all(0x21 <= ord(char) <= 0x7E for char in session_id)
        # The id names this node's route, then 192 random bits.
        route, _, random_part = session_id.partition(".")
        assert route == SETTINGS.node_route
        assert len(random_part) == 48
        int(random_part, 16)


async def test_a_created_session_serves_requests(manager: SessionManager) -> None:
    session = await manager.create()

    frames = await initialize_over_sse(session)

    assert len(frames) == 1
    assert b'"id":1' in frames[0]
    assert b'"protocolVersion":"2025-11-25"' in frames[0]
    assert len(session.log) == 1


async def test_initialize_answers_once_the_sessions_record_is_written(manager: SessionManager) -> None:
    _reply, session_id = await manager.initialize(INITIALIZE, RequestInfo({}))

    # A client that keeps no cookies may send its next request to another
    # node, which finds the session only through this record.
    assert session_id is not None
    record = manager.node.registry.get(session_id)
    assert record is not None
    assert (record.node_id, record.client_name) == (SETTINGS.node_id, "unit")


async def test_initialize_does_not_wait_on_a_registry_known_to_be_down(tmp_path: Path) -> None:
    dead = RedisServer(tmp_path)  # never started: nothing listens on its port
    with override_settings(CACHES=redis_cache(dead.url)):
        registry = RedisSessionRegistry(cache_alias="mcp_registry", session_ttl=60.0, node_ttl=10.0)
        manager = SessionManager(SETTINGS, ClusterNode(SETTINGS, registry, handle_sigterm=False))
        try:
            # The first answer waits for its write, which fails: now the node knows.
            _reply, first = await manager.initialize(INITIALIZE, RequestInfo({}))
            assert manager.node.writer.store_unreachable
            _reply, second = await manager.initialize(INITIALIZE, RequestInfo({}))

            # Both sessions are served, and both records wait for the store to come back.
            for session_id in (first, second):
                assert session_id is not None
                assert manager.get(session_id) is not None
            assert manager.node.writer.backlog == 2
        finally:
            await manager.close_all(CloseReason.SHUTDOWN)
            await manager.node.stop()


async def test_the_cap_refuses_new_sessions_with_retry_after(manager: SessionManager) -> None:
    held = [await manager.create() for _ in range(manager.settings.max_sessions)]

    with pytest.raises(NodeFull) as raised:
        await manager.create()

    assert raised.value.status == 503
    assert int(raised.value.headers["Retry-After"]) > 0
    assert len(manager) == len(held)


async def test_closing_a_session_makes_room_under_the_cap(manager: SessionManager) -> None:
    held = [await manager.create() for _ in range(manager.settings.max_sessions)]
    await manager.close(held[0].id, CloseReason.OPERATOR)

    replacement = await manager.create()

    assert manager.get(replacement.id) is replacement


# --- close -----------------------------------------------------------------------


async def test_close_forgets_the_session_and_frees_what_it_held(manager: SessionManager) -> None:
    session = await manager.create()
    await initialize_over_sse(session)
    assert session.streams
    assert len(session.log) > 0

    assert await manager.close(session.id, CloseReason.OPERATOR) is True

    assert manager.get(session.id) is None
    assert len(manager) == 0
    assert session.closed
    assert session_tasks(session) == []
    assert session.streams == {}
    assert len(session.log) == 0
    assert session.log.size_bytes == 0


async def test_close_leaves_other_sessions_alone(manager: SessionManager) -> None:
    closing = await manager.create()
    staying = await manager.create()

    await manager.close(closing.id, CloseReason.OPERATOR)

    assert manager.get(staying.id) is staying
    assert len(session_tasks(staying)) == 1
    assert not staying.closed


async def test_close_is_idempotent(manager: SessionManager) -> None:
    session = await manager.create()

    assert await manager.close(session.id, CloseReason.OPERATOR) is True
    assert await manager.close(session.id, CloseReason.OPERATOR) is False


async def test_a_message_for_a_closed_session_is_refused_as_not_found(manager: SessionManager) -> None:
    session = await manager.create()
    await manager.close(session.id, CloseReason.OPERATOR)

    with pytest.raises(SessionNotFound):
        await session.deliver(SessionMessage(INITIALIZE))


async def test_close_of_an_unknown_id_returns_false(manager: SessionManager) -> None:
    assert await manager.close("no-such-session", CloseReason.OPERATOR) is False


async def test_concurrent_closes_free_the_session_once(manager: SessionManager) -> None:
    session = await manager.create()

    first, second = await asyncio.gather(
        manager.close(session.id, CloseReason.OPERATOR), manager.close(session.id, CloseReason.OPERATOR)
    )

    assert (first, second) == (True, False)
    assert session_tasks(session) == []


async def test_close_takes_the_session_out_of_the_table_before_it_winds_down(manager: SessionManager) -> None:
    session = await manager.create()

    closing = asyncio.create_task(manager.close(session.id, CloseReason.OPERATOR))
    await asyncio.sleep(0)  # let close run up to its first await

    assert manager.get(session.id) is None
    assert await closing is True


async def test_close_ends_an_open_standalone_stream_with_a_retry_hint(manager: SessionManager) -> None:
    session = await manager.create()  # not initialized: no priming event, so only the close shows
    connection = session.open_standalone_stream()
    assert connection is not None

    await manager.close(session.id, CloseReason.OPERATOR)

    assert not connection.open
    async with asyncio.timeout(PATIENCE):
        frames = [frame async for frame, _last in connection.frames(keepalive=60.0) if frame]
    assert frames == [retry_frame(SETTINGS.sse_retry_ms)]


async def test_close_all_closes_every_session(manager: SessionManager) -> None:
    sessions = [await manager.create() for _ in range(3)]

    await manager.close_all(CloseReason.SHUTDOWN)

    assert len(manager) == 0
    assert all(session.closed for session in sessions)
    assert all(session_tasks(session) == [] for session in sessions)


# --- idle reaping -------------------------------------------------------------------


async def test_an_idle_session_is_reaped(reaping_manager: SessionManager) -> None:
    session = await reaping_manager.create()

    assert await eventually(lambda: reaping_manager.get(session.id) is None)
    assert await eventually(lambda: session_tasks(session) == [])
    assert session.closed


async def test_a_session_with_an_open_standalone_stream_is_not_reaped(reaping_manager: SessionManager) -> None:
    streaming = await reaping_manager.create()
    connection = streaming.open_standalone_stream()
    assert connection is not None
    # Created after `streaming`, so whenever the reaper finds `idle` past its timeout,
    # `streaming` is past it too: only its open stream can keep it.
    idle = await reaping_manager.create()

    assert await eventually(lambda: reaping_manager.get(idle.id) is None)

    assert reaping_manager.get(streaming.id) is streaming
    assert not streaming.closed
    assert connection.open

    # Once the stream is gone (the consumer detaches it when the response ends), it is reaped.
    connection.finish()
    streaming.streams[STANDALONE_STREAM].detach(connection)
    assert await eventually(lambda: reaping_manager.get(streaming.id) is None)


async def test_a_session_with_a_request_in_flight_is_not_reaped(reaping_manager: SessionManager) -> None:
    busy = await reaping_manager.create()
    busy.in_flight += 1
    idle = await reaping_manager.create()

    assert await eventually(lambda: reaping_manager.get(idle.id) is None)

    assert reaping_manager.get(busy.id) is busy
    busy.in_flight -= 1
    busy.touch()
    assert await eventually(lambda: reaping_manager.get(busy.id) is None)


async def test_a_local_close_that_raises_still_removes_the_record(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    session = await manager.create()
    manager.publish(session)
    assert await manager.node.writer.settled(session.id, within=PATIENCE)
    assert manager.node.registry.get(session.id) is not None

    async def stop_that_fails(self: McpSession, **kwargs: object) -> None:
        raise RuntimeError("the session would not stop")

    # The one stand-in in this file: nothing real makes a session's stop fail on demand.
    # (On the class: sessions have slots, and no attribute of their own can shadow a method.)
    monkeypatch.setattr(McpSession, "stop", stop_that_fails)
    assert await manager.close(session.id, CloseReason.OPERATOR) is True

    assert manager.get(session.id) is None
    assert await manager.node.writer.settled(session.id, within=PATIENCE)
    assert manager.node.registry.get(session.id) is None
    assert "did not stop cleanly" in caplog.text


async def test_closing_a_session_held_nowhere_deletes_its_record(manager: SessionManager) -> None:
    registry = manager.node.registry
    registry.add(
        SessionRecord(
            session_id="ghost",
            node_id="gone-node",
            boot_id="old",
            channel_name="",
            created_at=0.0,
            protocol_version="2025-11-25",
        )
    )

    assert await manager.close("ghost", CloseReason.OPERATOR) is True
    assert registry.get("ghost") is None
    assert await manager.close("ghost", CloseReason.OPERATOR) is False
