"""Bodies over the limit are refused while they arrive (mcpsite/http_server.py), on a real node.

The uploads are generated on the fly by a raw-socket client: one 64 KiB chunk,
sent again and again, never the whole body in memory. Measured figures are
printed (`pytest -s`) for docs/deploy.md.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest

from tests.conftest import StartNode
from tests.mcp_http import BASE_HEADERS, initialize_body
from tests.nodes import LOOPBACK, Node

MCP_LIMIT = 4 * 1024 * 1024  # MCP_MAX_BODY_BYTES's default
DJANGO_LIMIT = 2_621_440  # DJANGO_MAX_BODY_BYTES's default
CHUNK = 64 * 1024
HUGE = 512 * 1024 * 1024
PIECE = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"


@dataclass
class Upload:
    sent: int  # body bytes the client's socket accepted (some may still sit in kernel buffers, unread)
    answer: bytes  # what came back (empty if the connection was cut without one)

    @property
    def status(self) -> int:
        return int(self.answer.split(b" ", 2)[1]) if self.answer.startswith(b"HTTP/1.1 ") else 0

    @property
    def body(self) -> bytes:
        return self.answer.partition(b"\r\n\r\n")[2]


def _head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {LOOPBACK}", "Content-Type: application/json"]
    lines += ["Accept: application/json, text/event-stream", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def chunked_upload(port: int, path: str, total: int, *, stop_at: int | None = None, wait: float = 10.0) -> Upload:
    """POST `total` bytes chunked, until the server answers or cuts the connection.

    With `stop_at`, stop sending once that many bytes are out and wait for the answer.
    """
    with socket.create_connection((LOOPBACK, port)) as sock:
        sock.sendall(_head(path, **{"Transfer-Encoding": "chunked"}))
        sent = 0
        while sent < total and (stop_at is None or sent < stop_at):
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered
            try:
                sock.sendall(PIECE)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        return Upload(sent, _read_answer(sock, wait))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def node(node_factory: StartNode) -> Node:
    # A node of its own: the RSS figures are this module's alone.
    return node_factory(MCP_NODE_ID="body-limits")


def test_a_chunked_mcp_body_is_refused_once_it_passes_the_limit(node: Node) -> None:
    """The client sends the limit plus one chunk and then nothing: the 413 comes without the rest."""
    upload = chunked_upload(node.port, "/mcp", HUGE, stop_at=MCP_LIMIT + CHUNK)

    assert upload.status == 413, upload.answer[:200]
    assert upload.sent == MCP_LIMIT + CHUNK
    error = json.loads(upload.body)
    assert error["error"]["code"] == -32600
    assert error["error"]["message"] == f"Payload Too Large: the limit is {MCP_LIMIT} bytes"


def test_a_huge_chunked_upload_stops_near_the_limit(node: Node) -> None:
    """A client that keeps sending is cut off: what it pushed is the limit plus what fits in the kernel's buffers."""
    upload = chunked_upload(node.port, "/mcp", HUGE)

    print(f"\n/mcp: 512 MiB chunked upload refused after the client sent {upload.sent} bytes")
    assert upload.status == 413
    # The server read at most limit + one chunk; the rest sat in socket buffers (tcp_rmem/tcp_wmem).
    assert upload.sent < MCP_LIMIT + 64 * 1024 * 1024


def test_a_chunked_graphql_body_is_refused_with_a_plain_413(node: Node) -> None:
    upload = chunked_upload(node.port, "/graphql", HUGE, stop_at=DJANGO_LIMIT + CHUNK)

    assert upload.status == 413, upload.answer[:200]
    assert b"content-type: text/plain" in upload.answer.lower()
    assert upload.body == f"Payload Too Large: the limit is {DJANGO_LIMIT} bytes\n".encode()


@pytest.mark.parametrize(("path", "limit"), [("/mcp", MCP_LIMIT), ("/graphql", DJANGO_LIMIT)])
def test_a_content_length_over_the_limit_is_refused_before_the_body(node: Node, path: str, limit: int) -> None:
    with socket.create_connection((LOOPBACK, node.port)) as sock:
        # Not a byte of body, and asking for "100 Continue": the answer is the 413 at once.
        sock.sendall(_head(path, **{"Content-Length": str(limit + 1), "Expect": "100-continue"}))
        answer = _read_answer(sock, 10.0)

    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"100 Continue" not in answer


def test_a_body_at_the_limit_is_still_read(node: Node, http_client: httpx.Client) -> None:
    padded = initialize_body()
    padded["params"]["clientInfo"]["name"] = "x"
    body = json.dumps(padded).encode()
    body = body.replace(b'"x"', b'"' + b"x" * (MCP_LIMIT - len(body) + 1) + b'"')
    assert len(body) == MCP_LIMIT

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), CHUNK):
            yield body[start : start + CHUNK]

    # A generator body goes out chunked.
    answer = http_client.post(node.mcp_url, content=chunks(), headers=BASE_HEADERS)

    assert answer.status_code == 200, answer.text
    assert "mcp-session-id" in answer.headers


def test_three_huge_uploads_at_once_leave_memory_flat(node: Node) -> None:
    assert node.process is not None
    pid = node.process.pid
    before = rss_kib(pid)
    peak = before
    results: list[Upload] = []
    threads = [
        threading.Thread(target=lambda: results.append(chunked_upload(node.port, "/mcp", HUGE))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_kib(pid))
        time.sleep(0.02)
    after = rss_kib(pid)

    print(f"\nnode RSS with three 512 MiB uploads: before {before} KiB, peak {peak} KiB, after {after} KiB")
    assert [upload.status for upload in results] == [413, 413, 413]
    assert peak - before < 20 * 1024
