"""Routing through the real Traefik: round robin, the sticky cookie, both MCP eras.

One cluster (Traefik, three daphne nodes, redis-server) serves the whole
module; no test here stops a node (test_traefik_failover.py does). Clients
without cookies are in test_traefik_session_routing.py.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from deploy import traefik_config
from deploy.cluster import Cluster
from tests.mcp_http import initialize_body, session_headers
from tests.traefik_cluster import (
    SessionClient,
    plain_client,
    routed,
    start_test_cluster,
    wait_for,
    wait_for_routed,
)

BASE_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
LISTING = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_test_cluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


def probe_default_router(client: httpx.Client, cluster: Cluster, tag: str) -> tuple[httpx.Response, str]:
    """One GraphQL query on the default router; returns the response and the node that served it (access log)."""
    response = client.post(f"{cluster.url}/graphql?c={tag}", json={"query": "{ categoryCounts { category count } }"})
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()
    served = wait_for_routed(cluster, tag, 1)[-1]
    assert served.router == "default@file"
    return response, served.node


def test_default_router_round_robins_without_a_cookie(cluster: Cluster) -> None:
    with plain_client(cluster) as client:
        served = []
        for number in range(12):
            response, node = probe_default_router(client, cluster, f"rr{number}")
            assert "set-cookie" not in response.headers
            served.append(node)
        assert not client.cookies

    counts = collections.Counter(served)
    assert set(counts) == set(cluster.node_names)
    assert max(counts.values()) - min(counts.values()) <= 1  # round robin, not merely "spread"


def test_the_first_mcp_response_sets_the_sticky_cookie(cluster: Cluster) -> None:
    with plain_client(cluster) as client:
        response = client.post(f"{cluster.mcp_url}?c=cookie", json=initialize_body(), headers=BASE_HEADERS)
        assert response.status_code == 200, response.text
        cookies = response.headers.get_list("set-cookie")
        session_id = response.headers["mcp-session-id"]
        # Sent back, the cookie keeps the session on its node.
        for request_id in range(10, 16):
            listing = {**LISTING, "id": request_id}
            follow_up = client.post(f"{cluster.mcp_url}?c=cookie", json=listing, headers=session_headers(session_id))
            assert follow_up.status_code == 200
            assert "set-cookie" not in follow_up.headers

    assert len(cookies) == 1
    name_value, *attributes = [part.strip() for part in cookies[0].split(";")]
    name, _, value = name_value.partition("=")
    assert name == traefik_config.MCP_COOKIE
    assert len(value) == 16  # Traefik's hash of the server URL, not the URL itself
    assert sorted(attributes) == sorted(["Path=/mcp", "HttpOnly", "Secure", "SameSite=Strict"])
    nodes = {request.node for request in wait_for_routed(cluster, "cookie", 7)}
    assert len(nodes) == 1


def test_initialize_takes_the_sticky_router_even_with_an_mcp_method_header(cluster: Cluster) -> None:
    with plain_client(cluster) as client:
        response = client.post(
            f"{cluster.mcp_url}?c=initmethod",
            json=initialize_body(),
            headers={**BASE_HEADERS, "Mcp-Method": "initialize"},
        )
    assert response.headers["set-cookie"].startswith(f"{traefik_config.MCP_COOKIE}=")
    assert wait_for_routed(cluster, "initmethod", 1)[0].router == "mcp@file"


async def test_sdk_client_keeps_its_session_on_one_node_for_50_calls(cluster: Cluster) -> None:
    async with SessionClient(cluster, "sdk50") as client:
        answers = [await client.echo(f"call {number}") for number in range(50)]

    assert answers == [f"call {number}" for number in range(50)]
    assert client.failures == []
    assert client.initializations == 1
    assert len(client.session_ids) == 1
    assert all(cookie.startswith(f"{traefik_config.MCP_COOKIE}=") for cookie in client.set_cookies)
    assert len(client.set_cookies) == 1  # on the first response only
    requests = routed(cluster, "sdk50")
    assert len(requests) >= 50
    # initialize took the sticky router; every later request carried the
    # session id and took its node's header router, to the same node.
    owners = {request.node for request in requests}
    assert len(owners) == 1
    (owner,) = owners
    assert requests[0].router == "mcp@file"
    assert {request.router for request in requests[1:]} == {f"mcp-{owner}@file"}


async def test_modern_clients_spread_over_the_nodes_without_a_cookie(cluster: Cluster) -> None:
    seen: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        seen.append(response)

    async with httpx.AsyncClient(verify=cluster.ssl_context(), event_hooks={"response": [keep]}) as http:
        transport = streamable_http_client(f"{cluster.mcp_url}?c=modern", http_client=http)
        async with Client(transport) as client:
            assert client.protocol_version == "2026-07-28"
            for number in range(12):
                result = await client.call_tool("echo", {"text": f"modern {number}"})
                assert not result.is_error
        assert not http.cookies

    assert all("set-cookie" not in response.headers for response in seen)
    assert all("mcp-session-id" not in response.headers for response in seen)
    requests = wait_for_routed(cluster, "modern", len(seen))
    assert {request.router for request in requests} == {"mcp-stateless@file"}
    assert {request.node for request in requests} == set(cluster.node_names)


def test_nodes_check_host_and_origin_behind_the_proxy(cluster: Cluster) -> None:
    """Traefik passes Host through: the nodes' DNS-rebinding and CSRF checks see what the client sent."""
    url = f"{cluster.mcp_url}?c=origin"
    with plain_client(cluster) as client:
        own_origin = client.post(url, json=initialize_body(), headers={**BASE_HEADERS, "Origin": cluster.url})
        plain_origin = cluster.url.replace("https://", "http://")
        downgraded = client.post(url, json=initialize_body(), headers={**BASE_HEADERS, "Origin": plain_origin})
        foreign = client.post(url, json=initialize_body(), headers={**BASE_HEADERS, "Origin": "https://evil.example"})
        rebound = client.post(url, json=initialize_body(), headers={**BASE_HEADERS, "Host": "evil.example"})

        # The admin's login form, fetched from one node and posted (round robin) to another.
        form = client.get(f"{cluster.url}/admin/login/?c=form")
        token = client.cookies["csrftoken"]
        login = client.post(
            f"{cluster.url}/admin/login/?c=login",
            data={"csrfmiddlewaretoken": token, "username": "nobody", "password": "wrong"},
            headers={"Origin": cluster.url, "Referer": f"{cluster.url}/admin/login/"},
        )

    assert own_origin.status_code == 200
    assert downgraded.status_code == 403
    assert foreign.status_code == 403
    assert rebound.status_code == 421
    assert form.status_code == 200
    assert login.status_code == 200  # not 403: the CSRF check passed
    assert "Please enter the correct" in login.text
    # Round robin sent the two to different nodes: one secret key serves the whole cluster.
    assert wait_for_routed(cluster, "form", 1)[0].node != wait_for_routed(cluster, "login", 1)[0].node


def test_metrics_are_served_on_the_internal_entrypoint_and_not_the_public_one(cluster: Cluster) -> None:
    with plain_client(cluster) as client:
        public = client.get(f"{cluster.url}/metrics?c=metrics")
    internal = httpx.get(cluster.traefik_metrics_url, timeout=5)
    expected_up = {
        f'traefik_service_server_up{{service="{name}@file",url="{cluster.node_url(name)}"}} 1'
        for name in cluster.node_names
    }

    def every_node_reported_up() -> bool:
        nonlocal internal
        internal = httpx.get(cluster.traefik_metrics_url, timeout=5)
        return expected_up <= set(internal.text.splitlines())

    # Through the public entrypoint /metrics is just a path: the catch-all router
    # sends it to a node, which has no such page. No Traefik route serves it.
    assert public.status_code == 404
    assert "traefik_" not in public.text
    (served,) = wait_for_routed(cluster, "metrics", 1)
    assert (served.router, served.status) == ("default@file", 404)
    assert served.node in cluster.node_names
    # The internal entrypoint, which no router uses and nothing publishes, has Traefik's own.
    assert internal.status_code == 200
    # Each node's own service, as its health checks see it (the gauge appears after a check or two).
    wait_for(every_node_reported_up, "every node's server_up gauge", timeout=5)
    samples = internal.text.splitlines()
    router_404 = 'traefik_router_requests_total{code="404",method="GET",protocol="http",router="default@file"'
    assert any(sample.startswith(router_404) for sample in samples), internal.text


def test_traefik_took_every_option_as_written(cluster: Cluster) -> None:
    """The running binary's view of its configuration holds every key and value the generator wrote."""
    raw = httpx.get(f"{cluster.api_url}/api/rawdata", timeout=5).json()
    written = traefik_config.dynamic_config(cluster.traefik_setup())["http"]
    for kind in ("routers", "middlewares", "services"):
        for name, definition in written[kind].items():
            assert_contains(raw[kind][f"{name}@file"], definition, f"{kind}.{name}")
    entry_point = httpx.get(f"{cluster.api_url}/api/entrypoints/{traefik_config.ENTRYPOINT}", timeout=5).json()
    static = traefik_config.static_config(cluster.traefik_setup())["entryPoints"][traefik_config.ENTRYPOINT]
    assert_contains(entry_point, static, "entryPoints.websecure")


def assert_contains(actual: Any, expected: Any, where: str) -> None:
    """`expected` is a sub-tree of `actual`: Traefik may add defaults, but must not drop or change ours.

    Traefik's API leaves out zero values (false, 0s) and writes durations its
    own way (60s as 1m0s), so those are compared by meaning.
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            if key not in actual and is_zero(value):
                continue
            assert key in actual, f"{where}.{key} is missing from Traefik's view"
            assert_contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), where
        assert len(actual) == len(expected), where
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_contains(got, want, f"{where}[{index}]")
    else:
        assert normalize(actual) == normalize(expected), f"{where}: {actual!r} != {expected!r}"


GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def is_zero(value: Any) -> bool:
    return value is False or value == {} or normalize(value) == 0.0


def normalize(value: Any) -> Any:
    """Durations as seconds; names without their provider (`compress@file` is our `compress`)."""
    if isinstance(value, str):
        parts = GO_DURATION.findall(value)
        if parts and "".join(number + unit for number, unit in parts) == value:
            return sum(float(number) * UNIT_SECONDS[unit] for number, unit in parts)
        return value.removesuffix("@file")
    return value
