"""Sessions outlive their node: real daphne nodes hosting the decision log, one real Redis, one database.

The client here never re-initializes: any 404 fails the test. Node `a` owns
the sessions and dies; `b` and `c` live on.
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.mcp_http import BASE_HEADERS, initialize_body, session_headers, sse_messages
from tests.nodes import Node, manage, node_maker
from tests.redis_server import RedisServer
from tests.test_cluster import session_key, wait_for
from tests.test_notifications import EDIT_TITLE, URI, graphql, is_update, propose, standalone

FAST = {"MCP_NODE_HEARTBEAT_TTL": "1.5", "MCP_REAPER_INTERVAL": "0.3", "MCP_STALE_GRACE": "1"}
LISTING = {"jsonrpc": "2.0", "id": 2, "method": "resources/list"}

StartNode = Callable[..., Node]


@pytest.fixture(scope="module")
def shared_env(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("adoption")
    env = {
        "REDIS_URL": redis_server.url,
        "DJANGO_SQLITE_PATH": str(workdir / "db.sqlite3"),
        "MCP_SERVER": "graphql_app.mcp.server.server",
        **FAST,
    }
    manage(env, "migrate", "--noinput")
    return env


@pytest.fixture(scope="module")
def survivors(shared_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """Nodes b and c, alive for the whole module."""
    logs = tmp_path_factory.mktemp("survivors")
    nodes = [Node(env={**shared_env, "MCP_NODE_ID": name}, log_path=logs / f"{name}.log") for name in ("b", "c")]
    for node in nodes:
        node.start()
    propose(nodes[0], "Sessions outlive their node")  # adr://1
    yield nodes[0], nodes[1]
    for node in nodes:
        node.stop(signal.SIGKILL)


@pytest.fixture
def start_node(shared_env: dict[str, str], tmp_path: Path) -> Iterator[StartNode]:
    with node_maker(tmp_path, shared_env) as start:
        yield start


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # No cookie jar, and no re-initialization anywhere in this module.
    with httpx.Client(timeout=15.0) as client:
        yield client


def initialize(client: httpx.Client, node: Node) -> str:
    answer = client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS)
    assert answer.status_code == 200, answer.text
    session_id = answer.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert client.post(node.mcp_url, json=initialized, headers=session_headers(session_id)).status_code == 202
    return session_id


def record(redis_server: RedisServer, session_id: str) -> dict[str, Any] | None:
    raw = redis_server.client().get(session_key(session_id))
    return None if raw is None else dict(json.loads(raw))


def adoptions(node: Node) -> list[str]:
    return [line for line in node.log().splitlines() if "Adopted MCP session" in line]


# --- a crash ---------------------------------------------------------------------------


def test_a_crashed_owners_session_carries_on_with_its_subscription(
    start_node: StartNode, survivors: tuple[Node, Node], client: httpx.Client, redis_server: RedisServer
) -> None:
    b, c = survivors
    a = start_node("a")
    session_id = initialize(client, a)
    # Records are written in the background: another node knows the session once it is there.
    wait_for(lambda: record(redis_server, session_id) is not None, "the session's record")
    # Subscribed through another node: relayed to a, and the record rewritten.
    body = {"jsonrpc": "2.0", "id": 5, "method": "resources/subscribe", "params": {"uri": URI}}
    assert client.post(c.mcp_url, json=body, headers=session_headers(session_id)).status_code == 200
    wait_for(lambda: (record(redis_server, session_id) or {}).get("subscriptions") == [URI], "the subscription")
    stream = standalone(a, session_id)
    wait_for(lambda: stream.events, "the standalone stream's priming event")
    last_seen = stream.events[-1]["id"]
    assert a.process is not None

    a.stop(signal.SIGKILL)
    stream.close()

    # The next request, through b, is served: same session, no initialize.
    answer = client.post(b.mcp_url, json=LISTING, headers=session_headers(session_id))
    assert answer.status_code == 200, answer.text
    assert sse_messages(answer.text)[-1]["result"]["resources"]
    assert len(adoptions(b)) == 1
    adopted = record(redis_server, session_id)
    assert adopted is not None
    assert (adopted["node_id"], adopted["adopted_from"], adopted["subscriptions"]) == ("b", "a", [URI])

    # The client reconnects its stream with the dead node's Last-Event-ID: accepted.
    resumed = standalone(b, session_id, **{"Last-Event-ID": last_seen})
    try:
        wait_for(lambda: resumed.first(is_update(URI)), "the update owed for the gap")
        assert resumed.status == 200
        # A change made on another node after the crash reaches the adopted subscription.
        graphql(c, EDIT_TITLE, {"number": 1, "title": "Edited after the crash"})
        wait_for(lambda: sum(1 for m in resumed.messages() if is_update(URI)(m)) == 2, "the change's update")
    finally:
        resumed.close()


def test_two_nodes_racing_for_one_orphan_adopt_it_once_and_answer_both(
    start_node: StartNode, survivors: tuple[Node, Node], client: httpx.Client, redis_server: RedisServer
) -> None:
    b, c = survivors
    a = start_node("a")
    session_id = initialize(client, a)
    # A session whose node dies before its record is written is lost (records are written in the background).
    wait_for(lambda: record(redis_server, session_id) is not None, "the session's record")
    adopted_before = len(adoptions(b)) + len(adoptions(c))
    a.stop(signal.SIGKILL)

    def ask(node: Node, request_id: int) -> int:
        # Distinct ids: two requests in flight in one session may not share one (409).
        listing = {**LISTING, "id": request_id}
        with httpx.Client(timeout=15.0) as own:
            return own.post(node.mcp_url, json=listing, headers=session_headers(session_id)).status_code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(ask, (b, c), (21, 22)))

    assert statuses == [200, 200]
    wait_for(lambda: len(adoptions(b)) + len(adoptions(c)) > adopted_before, "the adoption record")
    time.sleep(0.3)  # a second adoption, if there were one, would be logged by now
    assert len(adoptions(b)) + len(adoptions(c)) == adopted_before + 1


# --- what must not be adopted ----------------------------------------------------------


@pytest.mark.parametrize("how", ["delete", "command", "idle", "ttl"])
def test_a_closed_session_is_never_adopted(
    how: str,
    start_node: StartNode,
    survivors: tuple[Node, Node],
    client: httpx.Client,
    redis_server: RedisServer,
    shared_env: dict[str, str],
) -> None:
    b, _ = survivors
    env = {"idle": {"MCP_SESSION_IDLE_TIMEOUT": "0.5"}, "ttl": {"MCP_SESSION_TTL": "1"}}.get(how, {})
    a = start_node("a", **env)
    session_id = initialize(client, a)
    wait_for(lambda: record(redis_server, session_id) is not None, "the session's record")

    if how == "delete":
        assert client.delete(a.mcp_url, headers=session_headers(session_id)).status_code == 204
    elif how == "command":
        manage({**shared_env, "MCP_NODE_ID": "operator"}, "mcp_sessions", "close", session_id)
    # idle: the reaper closes it; ttl: the record expires in Redis.
    wait_for(lambda: record(redis_server, session_id) is None, "the record to go")
    adopted_before = len(adoptions(b))
    a.stop(signal.SIGKILL)

    answer = client.post(b.mcp_url, json=LISTING, headers=session_headers(session_id))

    assert answer.status_code == 404
    assert len(adoptions(b)) == adopted_before


def test_with_adoption_off_an_orphan_is_a_404(
    start_node: StartNode, client: httpx.Client, redis_server: RedisServer
) -> None:
    a = start_node("a")
    refuser = start_node("refuser", MCP_ADOPTION="0")
    session_id = initialize(client, a)
    wait_for(lambda: record(redis_server, session_id) is not None, "the session's record")
    a.stop(signal.SIGKILL)

    answer = client.post(refuser.mcp_url, json=LISTING, headers=session_headers(session_id))

    assert answer.status_code == 404
    assert not adoptions(refuser)
    # The record stays for the reaper, as before adoption existed.
    assert record(redis_server, session_id) is not None


def test_a_server_that_does_not_declare_itself_adoptable_is_not_adopted(
    start_node: StartNode, client: httpx.Client, redis_server: RedisServer
) -> None:
    a = start_node("a", MCP_SERVER_ADOPTABLE="0")
    other = start_node("other", MCP_SERVER_ADOPTABLE="0")
    session_id = initialize(client, a)
    wait_for(lambda: record(redis_server, session_id) is not None, "the session's record")
    a.stop(signal.SIGKILL)

    assert client.post(other.mcp_url, json=LISTING, headers=session_headers(session_id)).status_code == 404
    assert not adoptions(other)
