"""A stream whose client stops reading is ended once its unsent bytes pass a bound; the client resumes.

daphne hands every frame to Twisted at once, so without a bound the bytes a
slow reader has not taken pile up in the node. Here a real client opens the
standalone stream with a tiny receive buffer and stops reading while the
server floods it: the node ends that stream (and only it), and the client
resumes with `Last-Event-ID`, missing nothing.
"""

from __future__ import annotations

import socket
import time

import httpx2 as httpx

from tests.conftest import StartNode
from tests.mcp_http import open_session, session_headers, sse_events
from tests.nodes import LOOPBACK

UNSENT_LIMIT = 256 * 1024
COUNT, SIZE = 300, 32 * 1024


def open_unread_stream(port: int, session_id: str) -> socket.socket:
    """A GET of the standalone stream over a socket that reads next to nothing: a slow client."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((LOOPBACK, port))
    headers = {**session_headers(session_id), "Accept": "text/event-stream", "Host": f"{LOOPBACK}:{port}"}
    request = "GET /mcp HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    sock.sendall(request.encode())
    return sock


def read_all(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sent until it closed the connection (or `timeout` passed)."""
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def complete_events(response: bytes) -> list[dict[str, str]]:
    """The SSE events that arrived whole in a cut-off HTTP/1.1 response with a chunked body."""
    _, _, rest = response.partition(b"\r\n\r\n")
    body = b""
    while True:
        size_line, crlf, after = rest.partition(b"\r\n")
        if not crlf:
            break
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0 or len(after) < size:
            body += after[:size] if size else b""
            break
        body += after[:size]
        rest = after[size + 2 :]
    whole, _, _ = body.decode().rpartition("\n\n")
    return sse_events(whole + "\n\n") if whole else []


def flood(client: httpx.Client, url: str, session_id: str) -> None:
    """Have the probe server send COUNT log messages of SIZE bytes on the session's standalone stream."""
    call = {
        "jsonrpc": "2.0",
        "id": 9,
        "method": "tools/call",
        "params": {"name": "flood", "arguments": {"count": COUNT, "size": SIZE}},
    }
    answer = client.post(url, json=call, headers=session_headers(session_id))
    assert answer.status_code == 200
    assert "flooded" in answer.text


def is_flood(event: dict[str, str]) -> bool:
    return '"logger":"flood"' in event.get("data", "")


def test_an_unread_stream_is_ended_and_the_client_resumes_without_loss(node_factory: StartNode) -> None:
    node = node_factory(
        MCP_SERVER="tests.probe_server.server",
        MCP_SSE_MAX_UNSENT_BYTES=str(UNSENT_LIMIT),
        MCP_SSE_SLOW_READER_GRACE="1",
        # The replay log keeps the whole flood, so the resume can be checked event by event.
        MCP_EVENT_LOG_MAX_BYTES=str(64 * 1024 * 1024),
        MCP_EVENT_LOG_MAX_EVENTS="100000",
    )
    with httpx.Client(timeout=30.0) as client:
        session_id = open_session(client, node.mcp_url)
        slow = open_unread_stream(node.port, session_id)
        time.sleep(0.5)  # the stream is open (its priming event is in the socket)
        flood(client, node.mcp_url, session_id)

        # The client reads nothing for longer than the grace; then it finds the server gave up on the
        # stream: what had reached the socket is far less than the flood.
        time.sleep(3.0)
        received = read_all(slow, timeout=10.0)
        slow.close()
        assert len(received) < COUNT * SIZE / 2
        seen = [event for event in complete_events(received) if "id" in event]
        assert seen, "the priming event at least"
        floods_before = sum(map(is_flood, seen))

        # Resumed from the last event that arrived whole: every flood message not yet seen comes back.
        resumed_headers = {
            **session_headers(session_id),
            "Accept": "text/event-stream",
            "Last-Event-ID": seen[-1]["id"],
        }
        replayed, tail = 0, b""
        with client.stream("GET", node.mcp_url, headers=resumed_headers) as stream:
            assert stream.status_code == 200
            # Read as a client that keeps up would: each whole event once (the replay is megabytes).
            for piece in stream.iter_bytes():
                *whole, tail = (tail + piece).split(b"\n\n")
                replayed += sum(1 for event in whole if b'"logger":"flood"' in event)
                if replayed >= COUNT - floods_before:
                    break
        assert replayed + floods_before == COUNT
    assert "stopped reading" in node.log()


def test_a_backlog_past_the_ceiling_is_ended_without_waiting_for_the_grace(node_factory: StartNode) -> None:
    """Bound plus the largest replay: a stream holding more than that unsent is cut at once."""
    node = node_factory(
        MCP_SERVER="tests.probe_server.server",
        MCP_SSE_MAX_UNSENT_BYTES=str(UNSENT_LIMIT),
        MCP_SSE_SLOW_READER_GRACE="600",
        MCP_EVENT_LOG_MAX_BYTES=str(UNSENT_LIMIT),
    )
    ceiling = 2 * UNSENT_LIMIT
    with httpx.Client(timeout=30.0) as client:
        session_id = open_session(client, node.mcp_url)
        slow = open_unread_stream(node.port, session_id)
        time.sleep(0.5)
        flood(client, node.mcp_url, session_id)
        deadline = time.monotonic() + 10.0
        while "stopped reading" not in node.log():
            assert time.monotonic() < deadline, "the stream was not cut before the grace"
            time.sleep(0.1)
        assert f"past the ceiling of {ceiling}" in node.log()
        received = read_all(slow, timeout=10.0)
        slow.close()
        assert len(received) < COUNT * SIZE / 4
        # Only the stream ended: the session goes on.
        ping = {"jsonrpc": "2.0", "id": 10, "method": "ping"}
        assert client.post(node.mcp_url, json=ping, headers=session_headers(session_id)).status_code == 200
