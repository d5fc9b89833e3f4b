"""Several daphne nodes sharing one real Redis: the registry, misroutes, the close path, the reaper."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import redis

from tests.mcp_http import open_session, session_headers, sse_messages
from tests.nodes import Node, node_maker
from tests.redis_server import RedisServer

LISTING = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
FAST_LIVENESS = {
    "MCP_NODE_HEARTBEAT_TTL": "1.5",
    "MCP_REAPER_INTERVAL": "0.3",
    "MCP_STALE_GRACE": "1",
}

MakeNode = Callable[..., Node]


@pytest.fixture
def make_node(redis_server: RedisServer, tmp_path: Path) -> Iterator[MakeNode]:
    """Start nodes named `node_id` on the module's Redis; all stopped after the test."""
    with node_maker(tmp_path, {"REDIS_URL": redis_server.url, **FAST_LIVENESS}) as make:
        yield make


def wait_for(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def session_key(session_id: str) -> str:
    return f"mcp:session:{session_id}"


def record_of(redis_client: redis.Redis, session_id: str) -> dict[str, object] | None:
    raw = redis_client.get(session_key(session_id))
    return None if raw is None else dict(json.loads(str(raw)))


def miss_lines(node: Node) -> list[str]:
    return [line for line in node.log().splitlines() if "sessions_app.misroute" in line]


def test_session_record_names_its_owner(
    make_node: MakeNode, redis_server: RedisServer, http_client: httpx.Client
) -> None:
    node = make_node("alpha")
    session = open_session(http_client, node.mcp_url)
    store = redis_server.client()
    wait_for(lambda: store.exists(session_key(session)), "the session's record")

    record = record_of(store, session)
    ttl = store.ttl(session_key(session))

    assert record is not None
    assert record["node_id"] == "alpha"
    assert record["session_id"] == session
    assert str(record["channel_name"]).startswith("specific.")
    assert record["protocol_version"] == "2025-11-25"
    assert record["client_name"] == "raw-test"
    assert record["principal"] == ""
    assert 29 * 86400 < int(str(ttl)) <= 30 * 86400
    assert json.loads(str(store.get("mcp:node:alpha"))) == record["boot_id"]


def test_misroute_stale_and_unknown(make_node: MakeNode, redis_server: RedisServer, http_client: httpx.Client) -> None:
    # With relay and adoption off, as the sticky-cookie ADR had it (tests/test_relay.py and
    # tests/test_adoption.py cover them on).
    adr_2 = {"MCP_RELAY": "0", "MCP_ADOPTION": "0"}
    owner, other = make_node("owner", **adr_2), make_node("other", **adr_2)
    session = open_session(http_client, owner.mcp_url)
    store = redis_server.client()
    wait_for(lambda: store.exists(session_key(session)), "the session's record")

    # The wrong node: 404 telling the client to re-initialize, and a misroute record.
    wrong = http_client.post(other.mcp_url, json=LISTING, headers=session_headers(session))
    assert wrong.status_code == 404
    assert "Session not found" in wrong.json()["error"]["message"]
    assert "initialize" in wrong.json()["error"]["message"]
    wait_for(lambda: miss_lines(other), "a misroute log record")
    assert "MCP session miss: misroute" in miss_lines(other)[-1]
    assert "owner owner" in miss_lines(other)[-1]
    assert "this node other" in miss_lines(other)[-1]
    assert session not in other.log()  # only a hash of the id is logged
    # The session still works on its owner.
    assert http_client.post(owner.mcp_url, json=LISTING, headers=session_headers(session)).status_code == 200

    # The owner dies: the same request is now a stale session, and the reaper removes the record.
    owner.stop(signal.SIGKILL)
    wait_for(lambda: not store.exists("mcp:node:owner"), "the dead owner's heartbeat to expire")
    assert http_client.post(other.mcp_url, json=LISTING, headers=session_headers(session)).status_code == 404
    wait_for(lambda: "MCP session miss: stale" in miss_lines(other)[-1], "a stale log record")
    wait_for(lambda: not store.exists(session_key(session)), "the reaper to remove the record")

    # An id nobody ever issued.
    assert http_client.post(other.mcp_url, json=LISTING, headers=session_headers("made-up-id")).status_code == 404
    wait_for(lambda: "MCP session miss: unknown" in miss_lines(other)[-1], "an unknown log record")


@pytest.mark.parametrize("relay", ["1", "0"], ids=["relayed", "close-message"])
def test_delete_on_another_node_closes_the_session_on_its_owner(
    make_node: MakeNode, redis_server: RedisServer, http_client: httpx.Client, relay: str
) -> None:
    # Relayed to the owner, or (relay off) a close message to the session's channel.
    owner, other = make_node("keeper", MCP_RELAY=relay), make_node("messenger", MCP_RELAY=relay)
    session = open_session(http_client, owner.mcp_url)
    store = redis_server.client()
    wait_for(lambda: store.exists(session_key(session)), "the session's record")
    tasks_before = http_client.get(f"{owner.url}/healthz").json()["tasks"]

    with http_client.stream(
        "GET", owner.mcp_url, headers={**session_headers(session), "Accept": "text/event-stream"}
    ) as s:
        assert s.status_code == 200
        assert http_client.delete(other.mcp_url, headers=session_headers(session)).status_code == 204
        tail = s.read().decode()  # the owner ends the stream, with a retry hint

    assert "retry:" in tail
    assert not store.exists(session_key(session))
    wait_for(lambda: http_client.get(f"{owner.url}/healthz").json()["sessions"] == 0, "the owner to drop the session")
    assert http_client.post(owner.mcp_url, json=LISTING, headers=session_headers(session)).status_code == 404
    health = http_client.get(f"{owner.url}/healthz").json()
    # The session's server loop is gone (the process's one channel listener stays).
    assert health["tasks"] <= tasks_before - 1


def test_delete_on_the_owner_removes_the_record(
    make_node: MakeNode, redis_server: RedisServer, http_client: httpx.Client
) -> None:
    node = make_node("solo")
    session = open_session(http_client, node.mcp_url)
    store = redis_server.client()
    wait_for(lambda: store.exists(session_key(session)), "the session's record")

    assert http_client.delete(node.mcp_url, headers=session_headers(session)).status_code == 204

    wait_for(lambda: not store.exists(session_key(session)), "the record to go")
    assert http_client.get(f"{node.url}/healthz").json()["sessions"] == 0


def test_serving_a_session_touches_no_session_key(
    make_node: MakeNode, redis_server: RedisServer, http_client: httpx.Client
) -> None:
    node = make_node("quiet", MCP_REAPER_INTERVAL="3600")
    store = redis_server.client()
    with RedisMonitor(redis_server) as monitor:
        session = open_session(http_client, node.mcp_url)
        wait_for(lambda: store.exists(session_key(session)), "the session's record")
        created = monitor.commands_on("mcp:session:")
        for request_id in range(200):
            listing = {**LISTING, "id": request_id + 10}
            answer = http_client.post(node.mcp_url, json=listing, headers=session_headers(session))
            assert sse_messages(answer.text)[0]["id"] == request_id + 10
        served = monitor.commands_on("mcp:session:")
        assert http_client.delete(node.mcp_url, headers=session_headers(session)).status_code == 204
        wait_for(lambda: not store.exists(session_key(session)), "the record to go")
        closed = monitor.commands_on("mcp:session:")

    assert [command[0] for command in created] == ["SET"]
    assert served == created  # 200 requests: not one more command on a session key
    assert [command[0] for command in closed[len(served) :]] == ["DEL"]


class RedisMonitor:
    """Every command Redis executes while open, read from a MONITOR connection."""

    def __init__(self, server: RedisServer) -> None:
        connection = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
        self._monitor = connection.monitor()  # type: ignore[no-untyped-call]
        self._seen: list[list[str]] = []

    def __enter__(self) -> RedisMonitor:
        listening = self._monitor.__enter__()

        def pump() -> None:
            with contextlib.suppress(redis.exceptions.ConnectionError, ValueError):
                for event in listening.listen():
                    self._seen.append(str(event["command"]).split())

        threading.Thread(target=pump, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._monitor.connection.disconnect()

    def commands_on(self, prefix: str) -> list[list[str]]:
        """Commands naming a key with `prefix`, except the test's own EXISTS probes."""
        time.sleep(0.3)  # MONITOR output trails the commands a little
        return [
            command
            for command in list(self._seen)
            if command[0].upper() != "EXISTS" and any(arg.strip('"').startswith(prefix) for arg in command[1:])
        ]
