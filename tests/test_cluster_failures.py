"""A node whose Redis goes away, and a node told to stop: what clients and the registry see."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.mcp_http import BASE_HEADERS, initialize_body, open_session, session_headers, sse_messages
from tests.nodes import Node
from tests.redis_server import RedisServer
from tests.test_cluster import FAST_LIVENESS, session_key, wait_for

LISTING = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, since these tests kill it."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def start_node(redis_server: RedisServer, tmp_path: Path, node_id: str, **env: str) -> Node:
    settings = {"REDIS_URL": redis_server.url, "MCP_NODE_ID": node_id, **FAST_LIVENESS, **env}
    return Node(env=settings, log_path=tmp_path / f"{node_id}.log").start()


def test_sessions_outlive_a_redis_outage(private_redis: RedisServer, tmp_path: Path, http_client: httpx.Client) -> None:
    node = start_node(private_redis, tmp_path, "steadfast")
    try:
        store = private_redis.client()
        session = open_session(http_client, node.mcp_url)
        wait_for(lambda: store.exists(session_key(session)), "the session's record")

        private_redis.stop()
        answers = [
            http_client.post(node.mcp_url, json={**LISTING, "id": n}, headers=session_headers(session))
            for n in range(100)
        ]
        created = http_client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS)

        assert [answer.status_code for answer in answers] == [200] * 100
        assert all(sse_messages(answer.text)[0]["id"] == n for n, answer in enumerate(answers))
        assert created.status_code == 200
        newcomer = created.headers["mcp-session-id"]
        wait_for(lambda: "Session registry unavailable" in node.log(), "the registry outage to be logged")

        # Redis comes back empty: the node writes the records it could not, and the lost ones again.
        private_redis.start()
        store = private_redis.client()
        wait_for(lambda: store.exists(session_key(newcomer)), "the new session's record", timeout=20)
        wait_for(lambda: store.exists(session_key(session)), "the old session's record again", timeout=20)
        assert http_client.post(node.mcp_url, json=LISTING, headers=session_headers(session)).status_code == 200
    finally:
        node.stop(signal.SIGKILL)


def test_misroute_check_without_redis_says_unknown(
    private_redis: RedisServer, tmp_path: Path, http_client: httpx.Client
) -> None:
    node = start_node(private_redis, tmp_path, "lonely")
    try:
        private_redis.stop()
        answer = http_client.post(node.mcp_url, json=LISTING, headers=session_headers("somebody-elses"))
        assert answer.status_code == 404
        wait_for(lambda: "MCP session miss: unknown" in node.log(), "the miss record")
        assert "registry unavailable" in node.log()
    finally:
        node.stop(signal.SIGKILL)


@pytest.mark.parametrize("handoff", ["0", "1"], ids=["close", "hand-off"])
def test_sigterm_drains_the_node(
    private_redis: RedisServer, tmp_path: Path, http_client: httpx.Client, handoff: str
) -> None:
    grace = 8.0
    node = start_node(
        private_redis,
        tmp_path,
        "leaving",
        MCP_SHUTDOWN_DRAIN_DELAY="1",
        MCP_SHUTDOWN_GRACE=str(grace),
        MCP_SHUTDOWN_HANDOFF=handoff,
    )
    store = private_redis.client()
    session = open_session(http_client, node.mcp_url)
    wait_for(lambda: store.exists(session_key(session)), "the session's record")
    stream_text: list[str] = []

    def listen() -> None:
        headers = {**session_headers(session), "Accept": "text/event-stream"}
        with httpx.stream("GET", node.mcp_url, headers=headers, timeout=30) as stream:
            stream_text.append(stream.read().decode())

    listener = threading.Thread(target=listen)
    listener.start()
    wait_for(lambda: http_client.get(f"{node.url}/healthz").json()["sessions"] == 1, "the stream to open")
    assert node.process is not None
    node.process.send_signal(signal.SIGTERM)

    statuses = []
    refused = None
    while node.process.poll() is None:
        try:
            statuses.append(http_client.get(f"{node.url}/healthz").status_code)
            if refused is None and statuses[-1] == 503:
                refused = http_client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS)
        except httpx.TransportError:
            break
        time.sleep(0.05)
    try:
        exit_code = node.process.wait(timeout=grace + 5)
    except subprocess.TimeoutExpired:
        node.process.kill()
        raise
    listener.join(10)

    assert 503 in statuses
    # Saying "draining" to the balancer is not an error worth a log record.
    assert "Service Unavailable: /healthz" not in node.log()
    assert refused is not None
    assert refused.status_code == 503
    assert exit_code == 0
    assert stream_text
    assert stream_text[0].rstrip().endswith("retry: 1000")
    assert not store.exists("mcp:node:leaving")
    if handoff == "1":
        # Left for another node to adopt: the record stays, naming the node that is gone.
        record = store.get(session_key(session))
        assert record is not None
        assert json.loads(record)["node_id"] == "leaving"
        assert "Handed off 1 MCP sessions for adoption" in node.log()
    else:
        assert not store.exists(session_key(session))
