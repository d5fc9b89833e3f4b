"""Answers are handed to the kernel as the application gives them (mcpsite/http_server.py, `send_now`),
and that changes nothing else a client sees of its connection: keep-alive, pipelining and closing."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.web.test.requesthelper import DummyChannel

from mcpsite import http_server
from tests.mcp_http import modern_headers, modern_request
from tests.nodes import LOOPBACK, Node


def echo_request(port: int, text: str, **extra_headers: str) -> bytes:
    body = json.dumps(modern_request("tools/call", {"name": "echo", "arguments": {"text": text}})).encode()
    headers = {**modern_headers("tools/call", name="echo"), **extra_headers, "Content-Length": str(len(body))}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST /mcp HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n{head}\r\n".encode() + body


class Answers:
    """Reads answers framed by Content-Length off one connection, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self, what: str) -> None:
        piece = self.sock.recv(65536)
        assert piece, f"the connection closed {what}: {self.buffer!r}"
        self.buffer += piece

    def next(self) -> tuple[bytes, bytes]:
        """The next answer's head and body."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill("before a whole head")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        while len(self.buffer) < length:
            self._fill("inside a body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return head, body


def test_answers_on_one_kept_alive_connection_each_arrive_whole(node: Node) -> None:
    with socket.create_connection((LOOPBACK, node.port), timeout=10) as sock:
        answers = Answers(sock)
        for text in ("first", "second", "third"):
            sock.sendall(echo_request(node.port, text))
            head, body = answers.next()
            assert head.startswith(b"HTTP/1.1 200")
            assert text.encode() in body
        assert answers.buffer == b""  # nothing more than each answer's length


def test_pipelined_requests_are_answered_in_order(node: Node) -> None:
    with socket.create_connection((LOOPBACK, node.port), timeout=10) as sock:
        sock.sendall(echo_request(node.port, "one") + echo_request(node.port, "two"))
        answers = Answers(sock)
        bodies = [answers.next()[1] for _ in range(2)]
    assert b"one" in bodies[0]
    assert b"two" in bodies[1]


def test_a_connection_asked_to_close_gets_its_answer_and_then_closes(node: Node) -> None:
    with socket.create_connection((LOOPBACK, node.port), timeout=10) as sock:
        sock.sendall(echo_request(node.port, "last", Connection="close"))
        received = b""
        while piece := sock.recv(65536):  # until the node closes: a timeout here fails the test
            received += piece
    assert received.startswith(b"HTTP/1.1 200")
    assert b"last" in received


@pytest.mark.parametrize(("length", "expected"), [(b"2", ["sent", "wound down"]), (None, ["wound down"])])
def test_an_answer_of_known_length_leaves_before_its_request_is_wound_down(
    monkeypatch: pytest.MonkeyPatch, length: bytes | None, expected: list[str]
) -> None:
    """A chunked answer still needs its last chunk, which finishing writes: it is not sent before."""
    events: list[str] = []
    monkeypatch.setattr(http_server, "send_now", lambda transport: events.append("sent"))
    channel: Any = DummyChannel()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
    server = SimpleNamespace(protocol_connected=lambda request: None, protocol_disconnected=lambda request: None)
    # Twisted's finish hands the request to its factory's log first, then lets go of it.
    channel.factory = SimpleNamespace(server=server, log=lambda request: events.append("wound down"))
    request = http_server.RawBodyRequest(channel)
    request.method, request.clientproto = b"POST", b"HTTP/1.1"
    if length is not None:
        request.setHeader(b"content-length", length)

    request.write(b"{}")
    request.finish()

    assert events == expected
    assert channel.transport.written.getvalue().endswith(b"{}" if length else b"0\r\n\r\n")
