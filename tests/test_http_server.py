"""mcpsite/http_server.py: what is asked once per connection, and the periodic pass over the requests held."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import reactor
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
