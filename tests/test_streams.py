"""Streams of a live node, observed over raw HTTP: routing, resumption, cancellation."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from tests.conftest import StartNode
from tests.mcp_http import (
    modern_headers,
    modern_request,
    open_session,
    session_headers,
    sse_messages,
)
from tests.nodes import Node


@pytest.fixture(scope="module")
def probe(node_factory: StartNode) -> Node:
    return node_factory(MCP_SERVER="tests.probe_server.server")


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def call(name: str, request_id: int, progress: bool = False, **arguments: str) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress:
        params["_meta"] = {"progressToken": f"p{request_id}"}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def read_events(response: httpx.Response, until: str) -> list[dict[str, str]]:
    """Read SSE events from a streaming response until one whose data contains `until`."""
    events: list[dict[str, str]] = []
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if event:
                events.append(event)
                if until in event.get("data", ""):
                    return events
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")
    raise AssertionError(f"stream ended before {until!r}; got {events}")


def tool_text(message: dict[str, Any]) -> str:
    return str(message["result"]["content"][0]["text"])


def test_dropped_stream_resumes_with_last_event_id(probe: Node, client: httpx.Client) -> None:
    session = open_session(client, probe.mcp_url)
    headers = session_headers(session)
    with client.stream("POST", probe.mcp_url, json=call("hold", 2, progress=True, key="resume"), headers=headers) as r:
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["x-accel-buffering"] == "no"  # proxies must not hold events back
        assert r.headers["cache-control"] == "no-cache, no-transform"
        seen = read_events(r, until="notifications/progress")
    priming, progress = seen[0], seen[-1]
    assert priming["data"] == ""
    assert "retry" in priming
    # The stream dropped before the answer; the answer comes while nobody listens.
    released = client.post(probe.mcp_url, json=call("release", 3, key="resume"), headers=headers)
    assert "releasing resume" in released.text

    resume = {**headers, "Accept": "text/event-stream", "Last-Event-ID": progress["id"]}
    replay = client.get(probe.mcp_url, headers=resume)

    assert replay.status_code == 200
    messages = sse_messages(replay.text)
    assert [message.get("id") for message in messages] == [2]
    assert tool_text(messages[0]) == "released resume"


def first_read(url: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    """POST over a raw socket; what the first read returns (a loopback socket hands one write to one read)."""
    encoded = json.dumps(body).encode()
    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(encoded)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as raw:
        raw.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + encoded)
        return raw.recv(1 << 16)


def test_a_quick_answer_leaves_in_one_write_with_its_head(probe: Node, client: httpx.Client) -> None:
    """Head, priming event, answer and end of the SSE response are written together.

    One write reaches a proxy in one piece: Traefik then has the whole
    response in its buffer before it could cut it (traefik/traefik#11767).
    The same call is made once first: a cold first call can take a good
    part of the 50 ms the head waits for its answer.
    """
    session = open_session(client, probe.mcp_url)
    client.post(probe.mcp_url, json=call("cancelled", 4, key="quick"), headers=session_headers(session))

    answer = first_read(probe.mcp_url, call("cancelled", 5, key="quick"), session_headers(session))

    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"text/event-stream" in answer
    assert b"retry: " in answer  # the priming event
    assert b'"id":5' in answer
    assert answer.endswith(b"\r\n0\r\n\r\n")  # the end of the chunked body


def test_a_modern_answer_after_a_notification_leaves_in_one_write(probe: Node, client: httpx.Client) -> None:
    """In the 2026-07-28 era a notification turns the answer into a stream; a quick one is still one write."""
    body = modern_request("tools/call", {"name": "tick", "arguments": {}}, request_id=6)
    body["params"]["_meta"]["progressToken"] = "t6"
    headers = modern_headers("tools/call", name="tick")
    client.post(probe.mcp_url, json=body, headers=headers)  # warm: a cold first call takes about 15 ms

    answer = first_read(probe.mcp_url, body, headers)

    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"text/event-stream" in answer
    assert answer.index(b"notifications/progress") < answer.index(b'"id":6')
    assert answer.endswith(b"\r\n0\r\n\r\n")


def test_each_message_goes_on_exactly_one_stream(probe: Node, client: httpx.Client) -> None:
    session = open_session(client, probe.mcp_url)
    headers = session_headers(session)
    standalone_headers = {**headers, "Accept": "text/event-stream"}
    with client.stream("GET", probe.mcp_url, headers=standalone_headers) as standalone:
        assert standalone.status_code == 200
        answer = client.post(probe.mcp_url, json=call("announce", 4), headers=headers)
        on_standalone = read_events(standalone, until="list_changed")

    assert "list_changed" not in answer.text
    assert [m["id"] for m in sse_messages(answer.text)] == [4]
    notifications = [json.loads(e["data"]) for e in on_standalone if e.get("data")]
    assert [n["method"] for n in notifications] == ["notifications/tools/list_changed"]


def test_concurrent_requests_each_get_their_own_answer(probe: Node, client: httpx.Client) -> None:
    session = open_session(client, probe.mcp_url)
    headers = session_headers(session)
    answers: dict[str, str] = {}

    def hold(key: str, request_id: int) -> None:
        with httpx.Client(timeout=10.0) as own:
            answers[key] = own.post(probe.mcp_url, json=call("hold", request_id, key=key), headers=headers).text

    threads = [threading.Thread(target=hold, args=(key, 10 + n)) for n, key in enumerate(["c1", "c2", "c3"])]
    for thread in threads:
        thread.start()
    for n, key in enumerate(["c3", "c1", "c2"]):
        client.post(probe.mcp_url, json=call("release", 20 + n, key=key), headers=headers)
    for thread in threads:
        thread.join(10)

    for n, key in enumerate(["c1", "c2", "c3"]):
        messages = sse_messages(answers[key])
        assert [m["id"] for m in messages] == [10 + n]
        assert tool_text(messages[0]) == f"released {key}"


def test_delete_ends_the_session(probe: Node, client: httpx.Client) -> None:
    session = open_session(client, probe.mcp_url)
    before = client.get(f"{probe.url}/healthz").json()["sessions"]

    assert client.delete(probe.mcp_url, headers=session_headers(session)).status_code == 204

    assert client.get(f"{probe.url}/healthz").json()["sessions"] == before - 1
    after = client.post(probe.mcp_url, json=call("announce", 5), headers=session_headers(session))
    assert after.status_code == 404
    assert "initialize" in after.json()["error"]["message"]


def test_modern_stream_close_cancels_the_request(probe: Node, client: httpx.Client) -> None:
    body = modern_request("tools/call", {"name": "park", "arguments": {"key": "modern"}})
    headers = modern_headers("tools/call", name="park")
    with pytest.raises(httpx.ReadTimeout):
        # Nothing will ever answer; the client gives up and closes the connection.
        client.post(probe.mcp_url, json=body, headers=headers, timeout=0.5)

    ask = modern_request("tools/call", {"name": "cancelled", "arguments": {"key": "modern"}})
    for _ in range(50):
        answer = client.post(probe.mcp_url, json=ask, headers=modern_headers("tools/call", name="cancelled"))
        if tool_text(answer.json()) == "yes":
            break
        threading.Event().wait(0.1)
    assert tool_text(answer.json()) == "yes"


def test_handshake_stream_drop_is_not_a_cancellation(probe: Node, client: httpx.Client) -> None:
    session = open_session(client, probe.mcp_url)
    headers = session_headers(session)
    with pytest.raises(httpx.ReadTimeout):
        client.post(probe.mcp_url, json=call("park", 6, key="handshake"), headers=headers, timeout=0.5)

    def was_cancelled(request_id: int) -> str:
        answer = client.post(probe.mcp_url, json=call("cancelled", request_id, key="handshake"), headers=headers)
        return tool_text(sse_messages(answer.text)[0])

    assert was_cancelled(7) == "no"
    # In this era a client cancels by saying so; that does reach the handler.
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 6}}
    assert client.post(probe.mcp_url, json=cancel, headers=headers).status_code == 202
    for request_id in range(8, 58):
        if was_cancelled(request_id) == "yes":
            break
        threading.Event().wait(0.1)
    assert was_cancelled(99) == "yes"


def test_a_resumed_stream_with_nothing_missed_sends_its_head_at_once(probe: Node) -> None:
    """Nothing to replay, no event yet: the head must not wait for the first event or keep-alive
    (MCP_SSE_KEEPALIVE, 15 s here). A client or a proxy waiting for it would give up first."""
    with httpx.Client(timeout=httpx.Timeout(10.0, read=5.0)) as client:
        session = open_session(client, probe.mcp_url)
        listen = {**session_headers(session), "Accept": "text/event-stream", "Last-Event-ID": "0.0"}
        with client.stream("GET", probe.mcp_url, headers=listen) as stream:
            assert stream.status_code == 200
            first = next(stream.iter_raw())
    assert first.startswith(b":")  # a comment: no event, no cursor moved
