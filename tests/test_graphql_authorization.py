"""Who may run what on /graphql: bearer tokens by scope, staff sessions with CSRF, nobody else; refusals change nothing.

Tokens are JWTs of an external issuer (tests/token_issuer.py, real HTTP on
loopback), checked by the same resource server as /mcp.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections
from django.test import AsyncClient
from pytest_django import Settings

from graphql_app.models import Decision
from tests.token_issuer import Issuer

URL = "/graphql"
RESOURCE = "http://127.0.0.1/mcp"
db = pytest.mark.django_db(transaction=True)
pytestmark = db

PROPOSE = """
mutation { proposeDecision(input: {title: "Forged", category: "Security", context: "c", decision: "d",
  consequences: "e"}) { decision { number } errors { code } } }
"""
QUERY = "{ decisions(first: 5) { totalCount } }"
CSRF_TOKEN = "k" * 32


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    served = Issuer()
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def authorization_on(settings: Settings, issuer: Issuer) -> None:
    settings.MCP_AUTH = "jwt"
    settings.MCP_AUTH_ISSUER = issuer.url
    settings.MCP_RESOURCE_URI = RESOURCE


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    yield AsyncClient(enforce_csrf_checks=True)
    await sync_to_async(connections.close_all)()


async def decisions() -> int:
    return await Decision.objects.acount()


async def run(client: AsyncClient, query: str, **headers: str) -> Any:
    return await client.post(URL, {"query": query}, content_type="application/json", headers=headers)


def challenge(response: Any) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', response["WWW-Authenticate"]))


async def test_anonymous_mutations_and_queries_get_401_and_change_nothing(client: AsyncClient) -> None:
    before = await decisions()
    for query in (PROPOSE, QUERY):
        response = await run(client, query)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert challenge(response)["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
    assert await decisions() == before


async def test_public_queries_setting_opens_queries_only(client: AsyncClient, settings: Settings) -> None:
    settings.GRAPHQL_PUBLIC_QUERIES = True
    assert (await run(client, QUERY)).status_code == 200
    assert (await run(client, PROPOSE)).status_code == 401


async def test_a_read_token_queries_but_cannot_mutate(client: AsyncClient, issuer: Issuer) -> None:
    token = issuer.token(RESOURCE, scope="mcp:read")
    before = await decisions()
    assert (await run(client, QUERY, Authorization=f"Bearer {token}")).status_code == 200
    refused = await run(client, PROPOSE, Authorization=f"Bearer {token}")
    assert refused.status_code == 403
    assert challenge(refused)["error"] == "insufficient_scope"
    assert challenge(refused)["scope"] == "mcp:read mcp:write"
    assert refused.json()["data"] is None
    assert await decisions() == before


async def test_a_write_token_mutates(client: AsyncClient, issuer: Issuer) -> None:
    token = issuer.token(RESOURCE, scope="mcp:read mcp:write")
    before = await decisions()
    response = await run(client, PROPOSE, Authorization=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["data"]["proposeDecision"]["errors"] == []
    assert await decisions() == before + 1


@pytest.mark.parametrize("audience", ["https://elsewhere.example/mcp", None])
async def test_a_token_for_another_resource_is_refused_before_the_operation_is_read(
    client: AsyncClient, issuer: Issuer, audience: str | None
) -> None:
    token = issuer.token(RESOURCE, aud=audience, scope="mcp:read mcp:write")
    response = await run(client, PROPOSE, Authorization=f"Bearer {token}")
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"


async def staff_client(staff: bool) -> AsyncClient:
    user = await User.objects.acreate(username=f"user-{staff}", is_staff=staff)
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(user)
    client.cookies["csrftoken"] = CSRF_TOKEN
    return client


async def test_a_staff_session_with_the_csrf_token_mutates() -> None:
    client = await staff_client(staff=True)
    before = await decisions()
    response = await run(client, PROPOSE, X_CSRFToken=CSRF_TOKEN)
    assert response.status_code == 200, response.content
    assert await decisions() == before + 1


async def test_a_staff_session_without_the_csrf_token_is_refused() -> None:
    client = await staff_client(staff=True)
    before = await decisions()
    for headers in ({}, {"X_CSRFToken": "x" * 32}):
        response = await run(client, PROPOSE, **headers)
        assert response.status_code == 403
    assert await decisions() == before


async def test_a_non_staff_session_counts_as_nobody() -> None:
    client = await staff_client(staff=False)
    response = await run(client, PROPOSE, X_CSRFToken=CSRF_TOKEN)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        # What a cross-site HTML form can send without a preflight.
        ("application/x-www-form-urlencoded", {"query": PROPOSE}),
        ("multipart/form-data; boundary=BoUnDaRy", None),
        ("text/plain", '{"query": "mutation { proposeDecision(input: {}) { errors { code } } }"}'),
    ],
)
async def test_cross_site_form_and_text_posts_change_nothing(content_type: str, body: Any) -> None:
    # The browser would attach the staff session cookie, but never our CSRF header.
    client = await staff_client(staff=True)
    before = await decisions()
    if body is None:
        body = f'--BoUnDaRy\r\nContent-Disposition: form-data; name="query"\r\n\r\n{PROPOSE}\r\n--BoUnDaRy--\r\n'
    if isinstance(body, dict):
        response = await client.post(URL, body, headers={"Origin": "https://evil.example"})
    else:
        response = await client.post(URL, body, content_type=content_type, headers={"Origin": "https://evil.example"})
    assert response.status_code in (400, 403, 415)
    assert await decisions() == before


async def test_cross_site_posts_with_a_token_in_a_form_field_change_nothing(
    client: AsyncClient, issuer: Issuer
) -> None:
    # Tokens are read from the Authorization header only, never from a body a form could fill.
    token = issuer.token(RESOURCE, scope="mcp:read mcp:write")
    before = await decisions()
    response = await client.post(URL, {"query": PROPOSE, "access_token": token})
    assert response.status_code in (400, 401, 415)
    assert await decisions() == before
