"""mcpsite/http_server.py: what is asked once per connection, the scope each request gets, and the periodic pass
over the requests held."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace
from typing import Any

import pytest
from daphne.http_protocol import WebRequest
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel
from twisted.web.test.requesthelper import DummyChannel

from mcpsite.http_server import RawBodyRequest, RawBodyServer


def test_a_connections_addresses_are_asked_once_for_all_its_requests() -> None:
    channel: Any = DummyChannel()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
    server = SimpleNamespace(protocol_connected=lambda request: None, protocol_disconnected=lambda request: None)
    channel.factory = SimpleNamespace(server=server, log=lambda request: None)
    asked: list[str] = []
    for name in ("getPeer", "getHost"):
        answer = getattr(channel.transport, name)

        def asking(name: str = name, answer: Any = answer) -> Any:
            asked.append(name)
            return answer()

        setattr(channel.transport, name, asking)

    requests = [RawBodyRequest(channel) for _ in range(3)]

    assert sorted(asked) == ["getHost", "getPeer"]
    assert len({id(request.client) for request in requests}) == 1


class Visited(dict[str, Any]):
    """A request's entry in daphne's table, noting whether the periodic pass read it."""

    visited = False

    def get(self, key: str, default: Any = None) -> Any:
        self.visited = True
        return super().get(key, default)


class Request:
    """A request as daphne's pass sees it: it can be told its application failed."""

    def __init__(self) -> None:
        self.failures: list[BaseException] = []

    def handle_exception(self, exception: BaseException) -> None:
        self.failures.append(exception)


async def serving(**behaviours: asyncio.Event | Exception | None) -> tuple[RawBodyServer, dict[str, Request]]:
    """A server (never run) holding one request per name, each application ending once its event is set
    (at once for None; raising it, for an exception)."""

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        ends = scope["ends"]
        if isinstance(ends, Exception):
            raise ends
        if ends is not None:
            await ends.wait()

    server = RawBodyServer(application=application, endpoints=["tcp:port=0"], application_close_timeout=10)
    server.connections = {}  # made by run()
    protocols = {name: Request() for name in behaviours}
    for name, ends in behaviours.items():
        server.protocol_connected(protocols[name])
        server.create_application(protocols[name], {"type": "http", "ends": ends})
    await asyncio.sleep(0)
    return server, protocols


@pytest.fixture(autouse=True)
def no_next_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reactor, "callLater", lambda *args: None)  # each pass schedules the next


async def test_the_pass_reaps_ended_requests_and_leaves_open_streams_unread() -> None:
    server, protocols = await serving(stream=asyncio.Event(), answered=None)
    server.connections[protocols["stream"]] = stream = Visited(server.connections[protocols["stream"]])
    server.protocol_disconnected(protocols["answered"])

    server.application_checker()

    assert protocols["answered"] not in server.connections
    assert protocols["stream"] in server.connections
    assert not stream.visited


async def test_an_application_outliving_its_client_is_cancelled_once_the_close_timeout_passes() -> None:
    server, protocols = await serving(lingering=asyncio.Event())
    lingering = protocols["lingering"]
    instance = server.connections[lingering]["application_instance"]
    server.protocol_disconnected(lingering)
    server.application_checker()
    await asyncio.sleep(0)
    assert not instance.done()  # within application_close_timeout

    server.connections[lingering]["disconnected"] -= 11
    server.application_checker()
    await asyncio.sleep(0)
    assert instance.cancelled()

    server.application_checker()
    assert lingering not in server.connections


async def test_an_application_failing_before_its_client_leaves_is_answered_at_the_next_pass() -> None:
    """Its request is not disconnected, so only the application's ending puts it on the list: daphne's 500."""
    failure = RuntimeError("the application failed")
    server, protocols = await serving(failing=failure)
    await asyncio.sleep(0)

    server.application_checker()

    assert protocols["failing"].failures == [failure]


# --- the request's scope, as daphne makes it ----------------------------------------------------------


class ScopeRecorder:
    """What `RawBodyRequest.process` needs of daphne's server, noting each scope and message given to the
    application."""

    def __init__(self, *, proxy_headers: bool) -> None:
        self.root_path = ""
        self.server_name = "daphne"
        self.request_buffer_size = 16
        self.proxy_forwarded_address_header = "X-Forwarded-For" if proxy_headers else None
        self.proxy_forwarded_port_header = "X-Forwarded-Port" if proxy_headers else None
        self.proxy_forwarded_proto_header = "X-Forwarded-Proto" if proxy_headers else None
        self.scopes: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []

    def protocol_connected(self, request: Any) -> None:
        pass

    def protocol_disconnected(self, request: Any) -> None:
        pass

    def log_action(self, *args: Any) -> None:
        pass

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        self.scopes.append(scope)
        return SimpleNamespace(put_nowait=self.messages.append)


def served(request_class: Any, raw: bytes, *, proxy_headers: bool = False) -> tuple[ScopeRecorder, bytes]:
    """`raw` read by a real Twisted HTTP channel whose requests are `request_class`; what the application
    was given, and what went back to the client (its Date header blanked)."""
    server = ScopeRecorder(proxy_headers=proxy_headers)
    # Any: Twisted leaves these unannotated.
    channel: Any = HTTPChannel()  # type: ignore[no-untyped-call]
    channel.requestFactory = request_class
    channel.factory = SimpleNamespace(server=server, log=lambda request: None)
    channel.timeOut = None
    transport: Any = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 50123))  # type: ignore[no-untyped-call]
    channel.makeConnection(transport)
    channel.dataReceived(raw)
    return server, re.sub(rb"Date: [^\r]+", b"Date: -", transport.value())


REQUESTS = {
    "an MCP POST": (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nMcp-Session-Id: abc\r\nContent-Length: 40\r\n\r\n"
        b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    ),
    "a quoted path, a query, repeated and underscored headers, a root path": (
        b"GET /a%20b/%C3%A9?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-Thing: 1\r\nx-thing: 2\r\nBad_Name: dropped\r\n"
        b"Daphne-Root-Path: /root%20path\r\n\r\n"
    ),
    "HTTP/1.0 with no headers": b"GET / HTTP/1.0\r\n\r\n",
    "an upgrade (daphne's own path)": b"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n",
    "a forbidden byte in a header value": b"GET / HTTP/1.1\r\nHost: h\r\nX-Bad: a\x0bb\r\n\r\n",
    "a forbidden byte in an underscored header's value": b"GET / HTTP/1.1\r\nHost: h\r\nX_Bad: a\x85b\r\n\r\n",
    "a path that is not ASCII": b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
    "a query that is not ASCII": b"GET /?q=\xff HTTP/1.1\r\nHost: h\r\n\r\n",
    "a root path that is not ASCII": b"GET / HTTP/1.1\r\nHost: h\r\nDaphne-Root-Path: \xff\r\n\r\n",
}


@pytest.mark.parametrize("raw", REQUESTS.values(), ids=REQUESTS.keys())
@pytest.mark.parametrize("proxy_headers", [False, True], ids=["direct", "behind a proxy"])
def test_a_request_reaches_the_application_as_daphne_would_hand_it(raw: bytes, proxy_headers: bool) -> None:
    if proxy_headers:
        raw = raw.replace(b"\r\n\r\n", b"\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: https\r\n\r\n", 1)

    ours, our_answer = served(RawBodyRequest, raw, proxy_headers=proxy_headers)
    daphnes, daphnes_answer = served(WebRequest, raw, proxy_headers=proxy_headers)

    assert ours.scopes == daphnes.scopes
    assert ours.messages == daphnes.messages
    assert our_answer == daphnes_answer


def test_the_scope_comparison_sees_a_difference() -> None:
    """The cases above compare something: a well-formed request gets a scope and its body in pieces,
    a malformed one daphne's 400 page and no application."""
    mcp, _ = served(RawBodyRequest, REQUESTS["an MCP POST"])
    assert mcp.scopes[0]["headers"][-1] == (b"content-length", b"40")
    assert b"".join(message["body"] for message in mcp.messages) == REQUESTS["an MCP POST"][-40:]
    assert [message["more_body"] for message in mcp.messages] == [True, True, False]
    refused, answer = served(RawBodyRequest, REQUESTS["a forbidden byte in a header value"])
    assert not refused.scopes
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Invalid header value" in answer
