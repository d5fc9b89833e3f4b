"""Per-node and per-session bounds, on live nodes configured with small limits."""

from __future__ import annotations

import time

import httpx2 as httpx

from tests.conftest import StartNode
from tests.mcp_http import BASE_HEADERS, initialize_body, open_session, session_headers


def test_a_full_node_answers_503_with_retry_after(node_factory: StartNode, http_client: httpx.Client) -> None:
    node = node_factory(MCP_MAX_SESSIONS="2")
    first = open_session(http_client, node.mcp_url)
    open_session(http_client, node.mcp_url)

    refused = http_client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS)

    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"]["code"] == -32603
    # Room frees up as sessions end.
    assert http_client.delete(node.mcp_url, headers=session_headers(first)).status_code == 204
    assert http_client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS).status_code == 200


def test_too_many_requests_in_flight_answers_429(node_factory: StartNode, http_client: httpx.Client) -> None:
    node = node_factory(MCP_SERVER="tests.probe_server.server", MCP_MAX_REQUESTS_PER_SESSION="1")
    headers = session_headers(open_session(http_client, node.mcp_url))
    hold = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "hold", "arguments": {"key": "l"}, "_meta": {"progressToken": "t"}},
    }
    with httpx.Client(timeout=10.0) as holder, holder.stream("POST", node.mcp_url, json=hold, headers=headers) as held:
        # The progress event proves the held request is in flight. (Keep the
        # line iterator alive: closing it would close the response.)
        lines = held.iter_lines()
        while "notifications/progress" not in next(lines):
            pass

        refused = http_client.post(
            node.mcp_url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=headers
        )
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == -32600

        # The one slot is taken, so release through a second session.
        release = {"name": "release", "arguments": {"key": "l"}}
        other = session_headers(open_session(http_client, node.mcp_url))
        released = http_client.post(
            node.mcp_url, json={"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": release}, headers=other
        )
        assert released.status_code == 200
        assert any("released l" in line for line in lines)


def test_idle_sessions_are_reaped(node_factory: StartNode, http_client: httpx.Client) -> None:
    node = node_factory(MCP_SESSION_IDLE_TIMEOUT="0.3")
    session = open_session(http_client, node.mcp_url)
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    # Watch /healthz rather than the session: a request would keep it alive.
    deadline = time.monotonic() + 10
    while http_client.get(f"{node.url}/healthz").json()["sessions"] and time.monotonic() < deadline:
        time.sleep(0.1)

    assert http_client.post(node.mcp_url, json=listing, headers=session_headers(session)).status_code == 404


def test_an_open_stream_keeps_a_session_alive(node_factory: StartNode, http_client: httpx.Client) -> None:
    node = node_factory(MCP_SESSION_IDLE_TIMEOUT="0.3")
    session = open_session(http_client, node.mcp_url)
    with http_client.stream("GET", node.mcp_url, headers={**session_headers(session), "Accept": "text/event-stream"}):
        time.sleep(1.5)  # five idle timeouts
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        assert http_client.post(node.mcp_url, json=listing, headers=session_headers(session)).status_code == 200


def test_body_limit_is_a_setting(node_factory: StartNode, http_client: httpx.Client) -> None:
    node = node_factory(MCP_MAX_BODY_BYTES="1000")
    body = initialize_body()
    body["params"]["clientInfo"]["name"] = "x" * 2000
    assert http_client.post(node.mcp_url, json=body, headers=BASE_HEADERS).status_code == 413
    assert http_client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS).status_code == 200


def test_dropped_streams_still_count_against_the_request_limit(
    node_factory: StartNode, http_client: httpx.Client
) -> None:
    node = node_factory(MCP_SERVER="tests.probe_server.server", MCP_MAX_REQUESTS_PER_SESSION="1")
    session = open_session(http_client, node.mcp_url)
    headers = session_headers(session)
    hold = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "hold", "arguments": {"key": "dropped"}, "_meta": {"progressToken": "t"}},
    }
    with http_client.stream("POST", node.mcp_url, json=hold, headers=headers) as held:
        for line in held.iter_lines():
            if "notifications/progress" in line:
                break  # leaving the loop closes the response: the stream is dropped
    # Nobody listens for the held request any more, but its handler still runs.
    refused = http_client.post(node.mcp_url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=headers)
    assert refused.status_code == 429

    release = {"name": "release", "arguments": {"key": "dropped"}}
    other = session_headers(open_session(http_client, node.mcp_url))
    http_client.post(
        node.mcp_url, json={"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": release}, headers=other
    )
    # Once the held request is answered (into the replay log), the slot is free again.
    statuses = []
    for request_id in range(5, 55):
        listing = {"jsonrpc": "2.0", "id": request_id, "method": "tools/list"}
        statuses.append(http_client.post(node.mcp_url, json=listing, headers=headers).status_code)
        if statuses[-1] != 429:
            break
        time.sleep(0.05)
    assert statuses[-1] == 200
