"""/mcp answers carry what Django's SecurityMiddleware gives its pages, and plain HTTP is redirected the same way."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.conftest import StartNode
from tests.mcp_http import BASE_HEADERS, initialize_body, session_headers
from tests.nodes import Node

SECURITY_HEADERS = (
    "strict-transport-security",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
)
# As behind Traefik in production: TLS at the proxy, which says so in X-Forwarded-Proto.
BEHIND_TLS = {
    "DJANGO_BEHIND_TLS_PROXY": "1",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
}
HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def tls_node(node_factory: StartNode) -> Node:
    return node_factory(**BEHIND_TLS)


def _security(response: httpx.Response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in SECURITY_HEADERS}


def test_mcp_gets_the_headers_a_django_page_gets(tls_node: Node, client: httpx.Client) -> None:
    django_page = client.get(f"{tls_node.url}/admin/login/", headers=HTTPS)
    assert django_page.status_code == 200
    expected = _security(django_page)
    assert expected["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert expected["x-content-type-options"] == "nosniff"

    initialized = client.post(tls_node.mcp_url, json=initialize_body(), headers={**BASE_HEADERS, **HTTPS})
    session = initialized.headers["mcp-session-id"]
    refused = client.post(tls_node.mcp_url, json=initialize_body(), headers={**BASE_HEADERS, **HTTPS, "Accept": ""})
    streamed = client.post(
        tls_node.mcp_url,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        headers={**session_headers(session), **HTTPS},
    )

    assert (initialized.status_code, refused.status_code, streamed.status_code) == (200, 406, 200)
    assert streamed.headers["content-type"] == "text/event-stream"
    for answer in (initialized, refused, streamed):
        assert _security(answer) == expected


def test_plain_http_to_mcp_is_redirected_to_https(tls_node: Node, client: httpx.Client) -> None:
    answer = client.post(f"{tls_node.mcp_url}?a=1", json=initialize_body(), headers=BASE_HEADERS)
    django_page = client.get(f"{tls_node.url}/admin/login/?a=1")

    assert answer.status_code == django_page.status_code == 301
    assert answer.headers["location"] == f"https://127.0.0.1:{tls_node.port}/mcp?a=1"
    assert django_page.headers["location"] == f"https://127.0.0.1:{tls_node.port}/admin/login/?a=1"
    # No HSTS over plain HTTP (Django sends none either).
    assert "strict-transport-security" not in answer.headers


def test_a_redirect_never_names_a_host_mcp_does_not_answer_to(tls_node: Node, client: httpx.Client) -> None:
    answer = client.post(tls_node.mcp_url, json=initialize_body(), headers={**BASE_HEADERS, "Host": "evil.example"})
    assert answer.status_code == 421
    assert "location" not in answer.headers


def test_without_tls_settings_mcp_still_gets_the_other_headers(node: Node, client: httpx.Client) -> None:
    answer = client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS)

    assert answer.status_code == 200
    assert _security(answer) == {
        "strict-transport-security": None,
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
    }
