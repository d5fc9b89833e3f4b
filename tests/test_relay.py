"""The relay: three real daphne nodes on one real Redis, and a client that keeps no cookies.

The client sends each request to the next node in turn, as a round-robin
proxy that knows nothing of MCP would (a Kubernetes Service, compose
--scale, a Traefik without the header rules). Every request must be served
as if it had reached the session's owner.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from sessions_app.cluster.routing import default_route
from tests.mcp_http import BASE_HEADERS, initialize_body, session_headers, sse_events, sse_messages
from tests.nodes import Node, node_maker
from tests.redis_server import RedisServer
from tests.test_cluster import RedisMonitor, miss_lines, record_of, session_key, wait_for

NODE_ENV = {
    "MCP_SERVER": "tests.probe_server.server",
    "MCP_NODE_HEARTBEAT_TTL": "1.5",
    # The reaper reads every record; it would blur the count of registry reads.
    "MCP_REAPER_INTERVAL": "3600",
}
PROGRESS_CALL = {
    "jsonrpc": "2.0",
    "id": 11,
    "method": "tools/call",
    "params": {"name": "tick", "arguments": {}, "_meta": {"progressToken": "p-11"}},
}

MakeNode = Callable[..., Node]


@pytest.fixture
def make_node(redis_server: RedisServer, tmp_path: Path) -> Iterator[MakeNode]:
    with node_maker(tmp_path, {"REDIS_URL": redis_server.url, **NODE_ENV}) as make:
        yield make


@pytest.fixture(scope="module")
def trio(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    """Three nodes shared by the tests that kill none of them."""
    logs = tmp_path_factory.mktemp("relay")
    nodes = [
        Node(env={"REDIS_URL": redis_server.url, "MCP_NODE_ID": name, **NODE_ENV}, log_path=logs / f"{name}.log")
        for name in ("relay-a", "relay-b", "relay-c")
    ]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop(signal.SIGKILL)


class RoundRobin:
    """A client without a cookie jar, sending each request to the next node: it records every status."""

    def __init__(self, nodes: list[Node]) -> None:
        self._next = itertools.cycle(nodes)
        self.http = httpx.Client(timeout=10.0, cookies=None)
        self.statuses: list[tuple[str, int, str]] = []

    def node(self) -> Node:
        return next(self._next)

    def post(self, message: dict[str, Any], session_id: str | None = None, node: Node | None = None) -> httpx.Response:
        target = node or self.node()
        headers = session_headers(session_id) if session_id else BASE_HEADERS
        answer = self.http.post(target.mcp_url, json=message, headers=headers)
        self.statuses.append(("POST", answer.status_code, target.url))
        return answer

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def round_robin(trio: list[Node]) -> Iterator[RoundRobin]:
    client = RoundRobin(trio)
    yield client
    client.close()


def initialize(client: RoundRobin, node: Node) -> str:
    answer = client.post(initialize_body(), node=node)
    assert answer.status_code == 200, answer.text
    session_id = answer.headers["mcp-session-id"]
    assert client.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session_id).status_code == 202
    return session_id


class EventReader:
    """SSE events from an open response, read as far as a test needs."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.iter_lines()

    def until(self, done: Callable[[list[dict[str, str]]], bool]) -> list[dict[str, str]]:
        """Events read from now on, until `done(events)` says enough (or the response ends)."""
        events: list[dict[str, str]] = []
        block: list[str] = []
        for line in self._lines:
            if line:
                block.append(line)
                continue
            events.extend(sse_events("\n".join(block) + "\n\n"))
            block = []
            if done(events):
                break
        return events


def messages_of(events: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [json.loads(event["data"]) for event in events if event.get("data")]


# --- a client that keeps no cookies, behind a proxy that knows nothing of MCP --------------


def test_every_request_of_a_session_is_served_whichever_node_it_reaches(
    trio: list[Node], round_robin: RoundRobin
) -> None:
    owner = trio[0]
    session_id = initialize(round_robin, owner)
    assert session_id.startswith(default_route("relay-a") + ".")

    listing = round_robin.post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session_id)
    assert listing.status_code == 200
    assert {tool["name"] for tool in sse_messages(listing.text)[0]["result"]["tools"]} >= {"tick", "roots"}

    # Progress and the answer, on one relayed SSE answer.
    ticked = round_robin.post(PROGRESS_CALL, session_id)
    assert ticked.status_code == 200
    assert ticked.headers["content-type"] == "text/event-stream"
    progress, answer = sse_messages(ticked.text)
    assert progress["method"] == "notifications/progress"
    assert progress["params"]["progressToken"] == "p-11"
    assert answer["id"] == 11
    assert answer["result"]["content"][0]["text"] == "ticked"

    # The requests really went round all three nodes, and none was refused.
    assert {url for _, _, url in round_robin.statuses} == {node.url for node in trio}
    assert all(status in (200, 202) for _, status, _ in round_robin.statuses)
    relayed = [line for node in trio[1:] for line in miss_lines(node)]
    assert relayed
    assert all("MCP session miss: misroute" in line and "relayed" in line for line in relayed)
    assert not miss_lines(owner)


def test_a_server_to_client_request_is_answered_through_another_node(trio: list[Node], round_robin: RoundRobin) -> None:
    session_id = initialize(round_robin, trio[0])
    call = {"jsonrpc": "2.0", "id": 21, "method": "tools/call", "params": {"name": "roots", "arguments": {}}}

    with round_robin.http.stream("POST", trio[1].mcp_url, json=call, headers=session_headers(session_id)) as stream:
        assert stream.status_code == 200
        reader = EventReader(stream)
        events = reader.until(lambda seen: any(m.get("method") == "roots/list" for m in messages_of(seen)))
        question = next(m for m in messages_of(events) if m.get("method") == "roots/list")
        reply = {"jsonrpc": "2.0", "id": question["id"], "result": {"roots": [{"uri": "file:///srv/x", "name": "x"}]}}
        # The answer goes to the third node, which relays it to the owner.
        assert round_robin.post(reply, session_id, node=trio[2]).status_code == 202
        rest = reader.until(lambda seen: any(m.get("id") == 21 for m in messages_of(seen)))

    final = next(m for m in messages_of(rest) if m.get("id") == 21)
    assert final["result"]["content"][0]["text"] == "x"


def test_a_relayed_standalone_stream_resumes_with_last_event_id_on_another_node(
    trio: list[Node], round_robin: RoundRobin
) -> None:
    session_id = initialize(round_robin, trio[0])
    listen = {**session_headers(session_id), "Accept": "text/event-stream"}
    announce = {"jsonrpc": "2.0", "id": 31, "method": "tools/call", "params": {"name": "announce", "arguments": {}}}

    with round_robin.http.stream("GET", trio[1].mcp_url, headers=listen) as stream:
        assert stream.status_code == 200
        reader = EventReader(stream)
        priming = reader.until(lambda seen: bool(seen))
        assert round_robin.post(announce, session_id, node=trio[2]).status_code == 200
        live = reader.until(lambda seen: bool(messages_of(seen)))
    # The connection dropped; the client resumes after the priming event, through the third node.
    assert priming[0]["id"] == "0.0"
    assert messages_of(live)[0]["method"] == "notifications/tools/list_changed"

    replay_headers = {**listen, "Last-Event-ID": "0.0"}
    with round_robin.http.stream("GET", trio[2].mcp_url, headers=replay_headers) as stream:
        assert stream.status_code == 200
        replayed = EventReader(stream).until(lambda seen: bool(messages_of(seen)))
    assert replayed[0]["id"] == live[0]["id"]
    assert messages_of(replayed) == messages_of(live)


def test_a_relayed_answer_is_byte_for_byte_the_owners(trio: list[Node], round_robin: RoundRobin) -> None:
    owner, edge = trio[0], trio[1]
    session_id = initialize(round_robin, owner)
    ticked = round_robin.post(PROGRESS_CALL, session_id, node=owner)
    stream_number = sse_events(ticked.text)[0]["id"].split(".")[0]

    def both(headers: dict[str, str]) -> list[tuple[int, list[tuple[str, str]], bytes]]:
        answers = []
        for node in (owner, edge):
            answer = round_robin.http.get(node.mcp_url, headers=headers)
            lines = [(name, value) for name, value in answer.headers.multi_items() if name not in ("date", "server")]
            answers.append((answer.status_code, lines, answer.content))
        return answers

    # A finished stream's replay, and a refusal.
    listen = {**session_headers(session_id), "Accept": "text/event-stream"}
    direct, relayed = both({**listen, "Last-Event-ID": f"{stream_number}.0"})
    assert direct[0] == 200
    assert b"ticked" in direct[2]
    assert relayed == direct
    direct, relayed = both({**listen, "Last-Event-ID": "999.0"})
    assert direct[0] == 400
    assert relayed == direct


def test_the_client_leaving_ends_the_relayed_stream_at_the_owner(trio: list[Node], round_robin: RoundRobin) -> None:
    owner, edge = trio[0], trio[1]
    session_id = initialize(round_robin, owner)
    listen = {**session_headers(session_id), "Accept": "text/event-stream"}

    with round_robin.http.stream("GET", edge.mcp_url, headers=listen) as stream:
        assert stream.status_code == 200
        # Kept in a name: a reader that is dropped closes its response.
        reader = EventReader(stream)
        assert reader.until(lambda seen: bool(seen))[0]["id"] == "0.0"
        # While the relayed stream is open, the owner refuses a second one.
        assert round_robin.http.get(owner.mcp_url, headers=listen).status_code == 409

    def owner_takes_a_new_stream() -> bool:
        with round_robin.http.stream("GET", owner.mcp_url, headers=listen) as again:
            return again.status_code == 200

    wait_for(owner_takes_a_new_stream, "the owner to let go of the relayed stream")


def test_delete_through_another_node_closes_the_session_on_its_owner(
    trio: list[Node], round_robin: RoundRobin, redis_server: RedisServer
) -> None:
    owner = trio[0]
    session_id = initialize(round_robin, owner)
    store = redis_server.client()
    wait_for(lambda: store.exists(session_key(session_id)), "the session's record")

    assert round_robin.http.delete(trio[2].mcp_url, headers=session_headers(session_id)).status_code == 204

    wait_for(lambda: not store.exists(session_key(session_id)), "the record to go")
    for node in trio:
        assert (
            round_robin.post({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, session_id, node).status_code == 404
        )


def test_checks_happen_where_the_request_came_in(trio: list[Node], round_robin: RoundRobin) -> None:
    session_id = initialize(round_robin, trio[0])
    edge = trio[1]
    misses_before = len(miss_lines(edge))
    listing = {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}

    hostile = round_robin.http.post(
        edge.mcp_url, json=listing, headers={**session_headers(session_id), "Origin": "https://evil.example"}
    )
    oversized = round_robin.http.post(
        edge.mcp_url, content=b" " * (4 * 1024 * 1024 + 1), headers=session_headers(session_id)
    )

    assert hostile.status_code == 403
    assert oversized.status_code == 413
    # Neither was looked up, let alone relayed.
    assert len(miss_lines(edge)) == misses_before


def test_a_relayed_request_the_owner_does_not_hold_is_a_404_not_a_second_relay(
    trio: list[Node], round_robin: RoundRobin, redis_server: RedisServer
) -> None:
    owner, edge = trio[0], trio[1]
    real = initialize(round_robin, owner)
    store = redis_server.client()
    wait_for(lambda: store.exists(session_key(real)), "the session's record")
    # A record naming the live owner, for a session the owner does not hold.
    record = record_of(store, real)
    assert record is not None
    ghost = f"{default_route('relay-a')}.{'0' * 48}"
    store.set(session_key(ghost), json.dumps({**record, "session_id": ghost}))
    owner_misses = len(miss_lines(owner))

    answer = round_robin.post({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, ghost, node=edge)

    assert answer.status_code == 404
    assert "initialize" in answer.json()["error"]["message"]
    assert "relayed" in miss_lines(edge)[-1]
    # The owner answered without looking the id up again (nor relaying it anywhere).
    assert len(miss_lines(owner)) == owner_misses


def test_a_relayed_session_costs_one_registry_read_however_many_requests(
    trio: list[Node], round_robin: RoundRobin, redis_server: RedisServer
) -> None:
    owner, edge = trio[0], trio[1]
    session_id = initialize(round_robin, owner)
    store = redis_server.client()
    wait_for(lambda: store.exists(session_key(session_id)), "the session's record")

    with RedisMonitor(redis_server) as monitor:
        for request_id in range(20):
            listing = {"jsonrpc": "2.0", "id": 100 + request_id, "method": "tools/list"}
            assert round_robin.post(listing, session_id, node=edge).status_code == 200
        reads = monitor.commands_on(session_key(session_id))

    # At most the one lookup (initialize() may have made it already, before the monitor).
    assert [command[0] for command in reads] in ([], ["GET"])


# --- when the relay cannot, or may not, help ----------------------------------------------


def test_a_dead_owners_session_gets_404_from_the_node_it_reaches(make_node: MakeNode) -> None:
    owner, other = make_node("doomed"), make_node("survivor")
    with httpx.Client(timeout=10.0) as client:
        answer = client.post(owner.mcp_url, json=initialize_body(), headers=BASE_HEADERS)
        session_id = answer.headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        assert client.post(other.mcp_url, json=listing, headers=session_headers(session_id)).status_code == 200

        owner.stop(signal.SIGKILL)

        # The survivor still remembers the owner, and its heartbeat has not expired yet:
        # the relay finds nobody listening and answers 404 at once.
        assert client.post(other.mcp_url, json=listing, headers=session_headers(session_id)).status_code == 404
    assert "owner not listening" in miss_lines(other)[-1]


def test_with_the_relay_off_a_misroute_is_a_404(make_node: MakeNode) -> None:
    owner, other = make_node("keeps", MCP_RELAY="0"), make_node("refuses", MCP_RELAY="0")
    with httpx.Client(timeout=10.0) as client:
        answer = client.post(owner.mcp_url, json=initialize_body(), headers=BASE_HEADERS)
        session_id = answer.headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        wait_for(lambda: "misroute" in _miss_after(client, other, session_id, listing), "a misroute record")

    assert "MCP session miss: misroute" in miss_lines(other)[-1]
    assert miss_lines(other)[-1].endswith(": 404")


def _miss_after(client: httpx.Client, node: Node, session_id: str, message: dict[str, Any]) -> str:
    """Send `message` to `node` (which must answer 404) and return its last miss record."""
    assert client.post(node.mcp_url, json=message, headers=session_headers(session_id)).status_code == 404
    lines = miss_lines(node)
    return lines[-1] if lines else ""


def test_a_relayed_call_in_flight_when_its_owner_dies_is_lost_not_run_twice(make_node: MakeNode) -> None:
    # The probe server is adoptable here, so the session itself survives the owner. JSON
    # answers: the answer cannot have started when the owner dies, however slow the machine.
    flags = {"MCP_SERVER_ADOPTABLE": "1", "MCP_JSON_RESPONSE": "1"}
    owner, edge = make_node("short-lived", **flags), make_node("edge", **flags)
    park = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "park", "arguments": {"key": "k"}}}
    with httpx.Client(timeout=15.0) as client:
        answer = client.post(owner.mcp_url, json=initialize_body(), headers=BASE_HEADERS)
        session_id = answer.headers["mcp-session-id"]

        def is_parked() -> bool:
            asked = {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": "parked", "arguments": {"key": "k"}},
            }
            answer = client.post(owner.mcp_url, json=asked, headers=session_headers(session_id))
            return "yes" in answer.text

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            parked = pool.submit(client.post, edge.mcp_url, json=park, headers=session_headers(session_id))
            # The call runs on the owner (through the relay) when the owner dies.
            wait_for(is_parked, "the relayed call to run on the owner")
            owner.stop(signal.SIGKILL)
            lost = parked.result()

        assert lost.status_code == 502
        assert "may or may not have run" in lost.json()["error"]["message"]
        # The session carries on: adopted by the edge, same id, no initialize.
        listing = {"jsonrpc": "2.0", "id": 8, "method": "tools/list"}
        again = client.post(edge.mcp_url, json=listing, headers=session_headers(session_id))
        assert again.status_code == 200
    assert any("owner gone while the request was in flight" in line for line in miss_lines(edge))
    assert any(line.endswith(": adopted") for line in miss_lines(edge))
