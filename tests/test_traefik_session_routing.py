"""Routing on the session id through the real Traefik: clients that keep no cookies, and a dead owner.

A session id names its node (`<route>.<random>`, sessions_app/cluster/routing.py)
and Traefik has one router per node on that prefix (deploy/traefik_config.py).
Every client here throws cookies away, as Node's `fetch` does. One cluster
serves the module; its nodes host tests/probe_server.py (progress, the
standalone stream). The last test kills a node.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from deploy.cluster import Cluster
from sessions_app.cluster.routing import default_route, new_session_id, route_of, session_hash
from tests.mcp_http import open_session, session_headers, sse_messages
from tests.traefik_cluster import miss_lines, plain_client, start_test_cluster, wait_for, wait_for_routed


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_test_cluster(tmp_path_factory.mktemp("cluster"), MCP_SERVER="tests.probe_server.server")
    yield cluster
    cluster.stop()


def owner_of(cluster: Cluster, session_id: str) -> str:
    routes = {default_route(name): name for name in cluster.node_names}
    route = route_of(session_id)
    assert route in routes, session_id
    return routes[route]


def call(name: str, request_id: int, *, progress: str | None = None, **arguments: str) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress is not None:
        params["_meta"] = {"progressToken": progress}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def tool_text(message: dict[str, Any]) -> str:
    return str(message["result"]["content"][0]["text"])


def next_event(lines: Iterator[str]) -> dict[str, str]:
    """The next SSE event from a streamed response's lines."""
    event: dict[str, str] = {}
    for line in lines:
        if line == "" and event:
            return event
        if line and not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")
    raise AssertionError(f"the stream ended; last partial event {event}")


def event_with(lines: Iterator[str], text: str) -> dict[str, str]:
    for _ in range(20):
        event = next_event(lines)
        if text in event.get("data", ""):
            return event
    raise AssertionError(f"no event with {text!r} in 20")


def test_a_client_without_cookies_is_served_by_its_sessions_node_throughout(cluster: Cluster) -> None:
    tag = "nocookie"
    url = f"{cluster.mcp_url}?c={tag}"
    standalone = {"Accept": "text/event-stream"}
    with plain_client(cluster, keep_cookies=False) as client:
        session_id = open_session(client, url)
        headers = session_headers(session_id)

        answered = client.post(url, json=call("release", 2, key="sse"), headers=headers)
        ticked = client.post(url, json=call("tick", 3, progress="tick-3"), headers=headers)

        # The standalone stream: a notification arrives live, the stream drops,
        # the next one waits in the replay log and comes back with Last-Event-ID.
        with client.stream("GET", url, headers=session_headers(session_id, **standalone)) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            priming = next_event(lines)
            assert client.post(url, json=call("announce", 4), headers=headers).status_code == 200
            live = event_with(lines, "notifications/tools/list_changed")
        assert client.post(url, json=call("announce", 5), headers=headers).status_code == 200
        resume = session_headers(session_id, **standalone, **{"Last-Event-ID": live["id"]})
        with client.stream("GET", url, headers=resume) as stream:
            assert stream.status_code == 200
            replayed = event_with(stream.iter_lines(), "notifications/tools/list_changed")

        ended = client.delete(url, headers=headers)
        after_end = client.post(url, json=call("release", 6, key="late"), headers=headers)
        assert not client.cookies

    owner = owner_of(cluster, session_id)
    assert answered.status_code == 200
    assert answered.headers["content-type"] == "text/event-stream"
    assert [tool_text(message) for message in sse_messages(answered.text)] == ["releasing sse"]
    assert ticked.headers["content-type"] == "text/event-stream"
    progress, result = sse_messages(ticked.text)
    assert progress["method"] == "notifications/progress"
    assert progress["params"]["progressToken"] == "tick-3"
    assert tool_text(result) == "ticked"
    assert priming["data"] == ""
    assert replayed["id"] != live["id"]  # the notification sent while nobody listened
    assert ended.status_code in (200, 204)
    assert after_end.status_code == 404

    requests = wait_for_routed(cluster, tag, 10)
    assert [request.method for request in requests].count("GET") == 2
    # initialize has no session id yet: the sticky router, any node.
    assert requests[0].router == "mcp@file"
    assert requests[0].node == owner
    # Everything after it took the owner's header router, to the owner.
    assert {(request.router, request.node) for request in requests[1:]} == {(f"mcp-{owner}@file", owner)}
    posts = [request.status for request in requests[1:] if request.method == "POST"]
    assert posts == [202, 200, 200, 200, 200, 404]
    # No other node ever saw the session; the owner logged one miss: the request after the end.
    short = session_hash(session_id)
    wait_for(lambda: any(short in line for line in miss_lines(cluster, owner)), "the owner's miss record")
    assert len([line for line in miss_lines(cluster, owner) if short in line]) == 1
    for node in set(cluster.node_names) - {owner}:
        assert [line for line in miss_lines(cluster, node) if short in line] == []


def test_an_id_naming_no_node_falls_through_to_the_sticky_router(cluster: Cluster) -> None:
    stranger = new_session_id("0000beef")  # a well-formed id whose route no node has
    with plain_client(cluster, keep_cookies=False) as client:
        answer = client.post(
            f"{cluster.mcp_url}?c=stranger", json=call("release", 2, key="x"), headers=session_headers(stranger)
        )

    assert answer.status_code == 404
    (request,) = wait_for_routed(cluster, "stranger", 1)
    assert request.router == "mcp@file"


def test_each_node_gets_its_own_sessions_across_many_clients(cluster: Cluster) -> None:
    """Round robin hands out sessions on every node; each one's requests go home."""
    tag = "many"
    url = f"{cluster.mcp_url}?c={tag}"
    sessions = []
    with plain_client(cluster, keep_cookies=False) as client:
        for _ in range(6):
            sessions.append(open_session(client, url))
        statuses = [
            client.post(url, json=call("release", 2, key="many"), headers=session_headers(session)).status_code
            for session in sessions * 2
        ]
        for session in sessions:
            client.delete(url, headers=session_headers(session))

    assert statuses == [200] * 12
    owners = {owner_of(cluster, session) for session in sessions}
    assert owners == set(cluster.node_names)
    requests = wait_for_routed(cluster, tag, 6 * 2 + 12 + 6)
    for request in requests:
        if request.router != "mcp@file":  # initialize
            assert request.router == f"mcp-{request.node}@file"


def test_a_dead_owners_sessions_get_404_from_a_live_node_then_the_owner_again(cluster: Cluster) -> None:
    """Kill the owner: its sessions' requests fail over to the pool at once and get 404, never 502.

    The dial to the dead node fails; the passive health check takes it out of
    its one-server service, and mcp-retry sends the request again, through the
    failover, to the pool. Restarted (answering JSON this time, to see that
    path too), the node has the same route and gets its ids back.
    """
    tag = "dead"
    url = f"{cluster.mcp_url}?c={tag}"
    with plain_client(cluster, keep_cookies=False) as client:
        doomed = open_session(client, url)
        owner = owner_of(cluster, doomed)
        assert client.post(url, json=call("release", 2, key="d"), headers=session_headers(doomed)).status_code == 200

        cluster.kill_node(owner)
        killed = time.monotonic()
        seen: list[tuple[float, int]] = []
        while time.monotonic() - killed < 2.0:
            answer = client.post(url, json=call("release", 3, key="d"), headers=session_headers(doomed), timeout=5)
            seen.append((time.monotonic() - killed, answer.status_code))
            time.sleep(0.05)

        cluster.start_node(owner, MCP_JSON_RESPONSE="1")
        wait_for(lambda: cluster.servers_up(owner) == [owner], f"Traefik to use {owner} again")
        back = client.post(f"{url}-back", json=call("release", 4, key="d"), headers=session_headers(doomed))
        fresh = ""
        for _ in range(10):  # round robin: a few tries to land initialize on the restarted node
            candidate = open_session(client, url)
            if owner_of(cluster, candidate) == owner:
                fresh = candidate
                break
            client.delete(url, headers=session_headers(candidate))
        assert fresh, f"no session on {owner} in 10 tries"
        json_answer = client.post(f"{url}-json", json=call("release", 5, key="j"), headers=session_headers(fresh))

    statuses = [status for _, status in seen]
    print(f"after the kill: {len(statuses)} requests, first answer {seen[0][0] * 1000:.0f} ms in: {statuses}")
    # Measured: all 404, the first one a few ms after the kill. A 502 can lead
    # when Traefik writes the first request on a pooled connection to the
    # node that just died (not replayed: it was sent); never more than one.
    assert statuses[statuses[0] == 502 :] == [404] * (len(statuses) - (statuses[0] == 502))
    after_kill = wait_for_routed(cluster, tag, 3 + len(statuses))[3 : 3 + len(statuses)]
    assert {request.router for request in after_kill} == {f"mcp-{owner}@file"}
    assert owner not in {request.node for request in after_kill if request.status == 404}
    # The route outlives the process: the old id reaches the restarted owner, which no longer has it.
    assert back.status_code == 404
    (request,) = wait_for_routed(cluster, f"{tag}-back", 1)
    assert (request.router, request.node) == (f"mcp-{owner}@file", owner)
    assert json_answer.status_code == 200
    assert json_answer.headers["content-type"] == "application/json"
    assert tool_text(json_answer.json()) == "releasing j"
    (request,) = wait_for_routed(cluster, f"{tag}-json", 1)
    assert (request.router, request.node) == (f"mcp-{owner}@file", owner)
