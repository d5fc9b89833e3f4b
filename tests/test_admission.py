"""Fair admission and the reaper's short timers, on real nodes.

One client cannot lock others out: sessions and listen streams are counted
per client (its token's principal, else its address), under the node's
global caps. Sessions nobody uses go early: one that made no request after
`initialize`, one whose client dropped its stream and sent nothing since;
a session in use keeps the long idle timeout.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import StartNode
from tests.mcp_http import (
    BASE_HEADERS,
    initialize_body,
    modern_headers,
    modern_request,
    open_session,
    session_headers,
)
from tests.nodes import Node
from tests.token_issuer import Issuer

PING = {"jsonrpc": "2.0", "id": 5, "method": "ping"}
# Asks whether a session is there (202, or 404) without counting as using it: a notification.
PROBE = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
RESOURCE = "http://127.0.0.1/mcp"


def initialize(node: Node, **headers: str) -> httpx.Response:
    return httpx.post(node.mcp_url, json=initialize_body(), headers={**BASE_HEADERS, **headers})


def wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- sessions per client -------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    served = Issuer()
    yield served
    served.stop()


def test_one_user_cannot_take_every_session(node_factory: StartNode, issuer: Issuer) -> None:
    node = node_factory(
        MCP_AUTH="jwt",
        MCP_AUTH_ISSUER=issuer.url,
        MCP_RESOURCE_URI=RESOURCE,
        MCP_MAX_SESSIONS="8",
        MCP_MAX_SESSIONS_PER_CLIENT="3",
    )
    mallory = {"Authorization": f"Bearer {issuer.token(RESOURCE, sub='mallory')}"}
    alice = {"Authorization": f"Bearer {issuer.token(RESOURCE, sub='alice')}"}
    assert [initialize(node, **mallory).status_code for _ in range(3)] == [200, 200, 200]
    refused = initialize(node, **mallory)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert "already holds 3 sessions" in refused.json()["error"]["message"]
    # Everyone else is still admitted, to the same share.
    alices = [initialize(node, **alice) for _ in range(3)]
    assert [answer.status_code for answer in alices] == [200, 200, 200]
    assert initialize(node, **alice).status_code == 429
    # A session ended gives its slot back.
    first = alices[0].headers["mcp-session-id"]
    assert httpx.delete(node.mcp_url, headers={**session_headers(first), **alice}).status_code == 204
    assert initialize(node, **alice).status_code == 200


def test_behind_a_proxy_clients_are_told_apart_by_the_address_it_saw(node_factory: StartNode) -> None:
    node = node_factory(MCP_MAX_SESSIONS_PER_CLIENT="2", MCP_PROXY_HOPS="1")
    # What a client writes into X-Forwarded-For itself is ignored: the proxy appends the real address last.
    one = {"X-Forwarded-For": "10.0.0.1"}
    spoofing = [{"X-Forwarded-For": f"192.0.2.{n}, 10.0.0.1"} for n in range(3)]
    assert initialize(node, **one).status_code == 200
    assert initialize(node, **spoofing[0]).status_code == 200
    assert initialize(node, **spoofing[1]).status_code == 429
    assert initialize(node, **{"X-Forwarded-For": "10.0.0.2"}).status_code == 200


def test_without_a_trusted_proxy_forwarded_addresses_count_for_nothing(node_factory: StartNode) -> None:
    node = node_factory(MCP_MAX_SESSIONS_PER_CLIENT="2", MCP_SESSION_UNUSED_TIMEOUT="300")
    answers = [initialize(node, **{"X-Forwarded-For": f"10.0.1.{n}"}).status_code for n in range(3)]
    assert answers == [200, 200, 429]


def test_healthz_says_when_the_node_is_full(node_factory: StartNode) -> None:
    node = node_factory(MCP_MAX_SESSIONS="2", MCP_MAX_SESSIONS_PER_CLIENT="0", MCP_SESSION_UNUSED_TIMEOUT="300")
    assert httpx.get(f"{node.url}/healthz").json()["status"] == "ok"
    for _ in range(2):
        assert initialize(node).status_code == 200
    health = httpx.get(f"{node.url}/healthz")
    # Still serving its sessions, so still in the balancer's pool; new sessions get 503.
    assert health.status_code == 200
    assert health.json()["status"] == "full"
    assert initialize(node).status_code == 503


# --- listen streams per client ---------------------------------------------------------


def test_one_client_cannot_take_every_listen_stream(node_factory: StartNode, issuer: Issuer) -> None:
    node = node_factory(
        MCP_AUTH="jwt",
        MCP_AUTH_ISSUER=issuer.url,
        MCP_RESOURCE_URI=RESOURCE,
        MCP_MAX_LISTEN_STREAMS_PER_CLIENT="2",
        # The decision log serves `subscriptions/listen` (listening needs no database).
        MCP_SERVER="graphql_app.mcp.server.server",
    )
    mallory = f"Bearer {issuer.token(RESOURCE, sub='mallory-listens')}"
    alice = f"Bearer {issuer.token(RESOURCE, sub='alice-listens')}"
    stop = threading.Event()
    opened: list[int] = []

    def listen(token: str) -> None:
        headers = {**modern_headers("subscriptions/listen"), "Authorization": token}
        body = modern_request("subscriptions/listen", {"notifications": {"resourceSubscriptions": ["adr://1"]}})
        # Ends with the test (stop) or, at the latest, with the node.
        with (
            contextlib.suppress(httpx.TransportError),
            httpx.stream("POST", node.mcp_url, json=body, headers=headers, timeout=30.0) as answer,
        ):
            opened.append(answer.status_code)
            for _ in answer.iter_bytes():
                if stop.is_set():
                    return

    held = [threading.Thread(target=listen, args=(mallory,), daemon=True) for _ in range(2)]
    for thread in held:
        thread.start()
    try:
        wait_until(lambda: len(opened) == 2, "two listen streams to open")
        assert opened == [200, 200]
        headers = {**modern_headers("subscriptions/listen"), "Authorization": mallory}
        body = modern_request("subscriptions/listen", {"notifications": {"resourceSubscriptions": ["adr://1"]}})
        third = httpx.post(node.mcp_url, json=body, headers=headers, timeout=10.0)
        assert third.status_code == 429
        # Another client still gets one.
        other = threading.Thread(target=listen, args=(alice,), daemon=True)
        other.start()
        wait_until(lambda: len(opened) == 3, "another client's listen stream")
        assert opened[-1] == 200
    finally:
        stop.set()


# --- the reaper's short timers ------------------------------------------------------------


def test_a_session_never_used_after_initialize_goes_early(node_factory: StartNode) -> None:
    node = node_factory(MCP_SESSION_UNUSED_TIMEOUT="0.5", MCP_SESSION_ABANDONED_TIMEOUT="300")
    with httpx.Client(timeout=10.0) as client:
        unused = open_session(client, node.mcp_url)  # initialize and `initialized` only
        used = open_session(client, node.mcp_url)
        assert client.post(node.mcp_url, json=PING, headers=session_headers(used)).status_code == 200
        wait_until(
            lambda: client.post(node.mcp_url, json=PROBE, headers=session_headers(unused)).status_code == 404,
            "the unused session to be reaped",
        )
        # The session that made a request keeps the long idle timeout.
        assert client.post(node.mcp_url, json=PING, headers=session_headers(used)).status_code == 200
    assert "unused since initialize" in node.log()


def test_a_session_whose_client_dropped_its_stream_goes_early_one_still_listening_stays(
    node_factory: StartNode,
) -> None:
    node = node_factory(MCP_SESSION_UNUSED_TIMEOUT="300", MCP_SESSION_ABANDONED_TIMEOUT="0.5")
    with httpx.Client(timeout=10.0) as client:
        dropped, listening = open_session(client, node.mcp_url), open_session(client, node.mcp_url)
        stream_headers = {**session_headers(dropped), "Accept": "text/event-stream"}
        with client.stream("GET", node.mcp_url, headers=stream_headers) as stream:
            assert stream.status_code == 200
            next(stream.iter_bytes())
        # `listening` keeps its stream open the whole time; `dropped` went away.
        stop = threading.Event()

        def hold() -> None:
            headers = {**session_headers(listening), "Accept": "text/event-stream"}
            with (
                contextlib.suppress(httpx.TransportError),
                httpx.stream("GET", node.mcp_url, headers=headers, timeout=30.0) as held,
            ):
                for _ in held.iter_bytes():
                    if stop.is_set():
                        return

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        try:
            wait_until(
                lambda: client.post(node.mcp_url, json=PROBE, headers=session_headers(dropped)).status_code == 404,
                "the abandoned session to be reaped",
            )
            time.sleep(1.0)
            assert client.post(node.mcp_url, json=PING, headers=session_headers(listening)).status_code == 200
        finally:
            stop.set()
    assert "abandoned" in node.log()
