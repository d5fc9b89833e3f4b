"""Change notifications across a Redis outage, and the change group after a node leaves.

Two real nodes hosting the decision log share one database and one Redis.
Redis is SIGKILLed while changes are made, then started again, empty, on the
same port: every client subscribed to a record must end up told about it,
by the change itself or by a resync, and changes made afterwards flow again.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.mcp_http import open_session
from tests.nodes import Node, manage
from tests.redis_server import RedisServer
from tests.test_notifications import EDIT_TITLE, URI, StreamReader, graphql, is_update, propose, standalone, subscribe

GROUP_KEY = "asgi:group:mcp-changes"


def wait_for(condition: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def nodes(redis: RedisServer, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    env = {
        "REDIS_URL": redis.url,
        "DJANGO_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "MCP_SERVER": "graphql_app.mcp.server.server",
        # A dead node is noticed within seconds.
        "MCP_NODE_HEARTBEAT_TTL": "1.5",
        "MCP_REAPER_INTERVAL": "0.3",
    }
    manage(env, "migrate", "--noinput")
    a = Node(env={**env, "MCP_NODE_ID": "node-a"}, log_path=tmp_path / "a.log").start()
    b = Node(env={**env, "MCP_NODE_ID": "node-b"}, log_path=tmp_path / "b.log").start()
    propose(b, "Survive a Redis outage")  # adr://1
    yield a, b
    for node in (a, b):
        node.stop(signal.SIGKILL)


def updates(stream: StreamReader) -> int:
    return sum(1 for message in stream.messages() if is_update(URI)(message))


def test_a_subscriber_hears_of_changes_made_while_redis_was_down(
    nodes: tuple[Node, Node], redis: RedisServer, tmp_path: Path
) -> None:
    a, b = nodes
    with httpx.Client(timeout=10.0) as client:
        session = open_session(client, a.mcp_url)
    subscribe(a, session, URI)
    stream = standalone(a, session)
    restarted = RedisServer(tmp_path, port=redis.port)
    try:
        wait_for(lambda: stream.events, "the stream's priming event")
        graphql(b, EDIT_TITLE, {"number": 1, "title": "Before the outage"})
        wait_for(lambda: updates(stream) == 1, "the change made before the outage")

        redis.stop()  # SIGKILL
        # Made on the other node while Redis is gone: the mutation itself still succeeds.
        graphql(b, EDIT_TITLE, {"number": 1, "title": "During the outage"})
        assert updates(stream) == 1

        restarted.start()  # back, empty, on the same port
        wait_for(lambda: updates(stream) >= 2, "the missed change, or a resync, after Redis returned")

        # The group is joined again: a change made now reaches a from b.
        heard = updates(stream)
        graphql(b, EDIT_TITLE, {"number": 1, "title": "After the outage"})
        wait_for(lambda: updates(stream) > heard, "a change made after Redis returned")
    finally:
        stream.close()
        restarted.stop()
    assert "re-read what they watch" in a.log()


def test_a_node_that_shuts_down_leaves_the_change_group(nodes: tuple[Node, Node], redis: RedisServer) -> None:
    a, _ = nodes
    members = redis.client()
    # A node's feed starts with its MCP server, on its first MCP request.
    propose(a, "Leave the group on the way out")
    wait_for(lambda: members.zcard(GROUP_KEY) == 2, "both nodes in the change group")
    a.stop(signal.SIGTERM)
    wait_for(lambda: members.zcard(GROUP_KEY) == 1, "the stopped node's channel to leave the group")


def test_a_killed_nodes_channel_is_taken_out_of_the_group_by_the_others(
    nodes: tuple[Node, Node], redis: RedisServer
) -> None:
    a, b = nodes
    members = redis.client()
    propose(a, "Reap the dead from the group")
    wait_for(lambda: members.zcard(GROUP_KEY) == 2, "both nodes in the change group")
    a.stop(signal.SIGKILL)
    # The reaper takes the channel out of the group, then its entry out of the members, then logs:
    # waited for as a whole, not read between two of its steps. The one left is b's own.
    wait_for(
        lambda: (
            members.zcard(GROUP_KEY) == 1
            and members.hlen("mcp:change-feed:members") == 1
            and "channels of dead processes" in b.log()
        ),
        "b's reaper to take a's channel out, forget it and say so",
    )
