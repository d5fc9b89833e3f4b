"""The official Python SDK's OAuth client against `make cluster`: the whole flow a new user goes through.

The cluster (Traefik over TLS, three daphne nodes, Redis, the embedded
authorization server) requires tokens. The SDK client starts with nothing:
its first request gets the 401, and from there it discovers the resource
metadata and the authorization server, registers itself (dynamic client
registration), sends the user's browser to the authorization endpoint with
PKCE, exchanges the code and calls tools; a write tool's 403 makes it step
up to the write scope. The test is the user at the browser: it logs in on
the login page and presses Allow on the consent page. Access tokens live
five seconds here, so the client also refreshes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.types import TextContent

from deploy.cluster import Cluster
from tests.conformance.authorization import read_form
from tests.nodes import manage
from tests.traefik_cluster import start_test_cluster

USERNAME, PASSWORD = "newcomer", "correct horse battery staple"
CALLBACK = "http://127.0.0.1:9/callback"  # never reached: the browser stops at the redirect
TOKEN_SECONDS = 5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("oauth-cluster")
    started = start_test_cluster(
        state,
        MCP_SERVER="graphql_app.mcp.server.server",
        MCP_AUTH="embedded",
        OAUTH_ACCESS_TOKEN_SECONDS=str(TOKEN_SECONDS),
    )
    create = (
        f"from django.contrib.auth.models import User; User.objects.create_user({USERNAME!r}, password={PASSWORD!r})"
    )
    manage({"DJANGO_SQLITE_PATH": str(state / "db.sqlite3")}, "shell", "-c", create)
    yield started
    started.stop()


class Storage:
    """Where the SDK keeps its registration and tokens: memory, and a record of every token it got."""

    def __init__(self) -> None:
        self.tokens: list[OAuthToken] = []
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens[-1] if self.tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Person:
    """The user at a browser (cookies kept): logs in when asked, allows the client, and reads where it is sent."""

    def __init__(self, cluster: Cluster) -> None:
        self.origin = cluster.url
        self.browser = httpx.AsyncClient(verify=cluster.ssl_context(), timeout=15.0)
        self.authorizations: list[str] = []
        self.redirects: list[str] = []

    async def open(self, authorization_url: str) -> None:
        self.authorizations.append(authorization_url)
        page = await self._follow(await self.browser.get(authorization_url))
        if "/oauth/login" in str(page.url):
            form = read_form(page.text)
            fields = {**form.fields, "username": USERNAME, "password": PASSWORD}
            page = await self._follow(await self._post(page, form.action or str(page.url), fields))
        consent = read_form(page.text)
        assert "allow" in consent.buttons, page.text[:2000]
        fields = {**consent.fields, "allow": consent.buttons["allow"]}
        answer = await self._post(page, consent.action or str(page.url), fields)
        assert answer.status_code == 302, answer.text[:2000]
        self.redirects.append(answer.headers["location"])

    async def callback(self) -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(self.redirects[-1]).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query.get("iss", [None])[0])

    async def _post(self, page: httpx.Response, action: str, fields: dict[str, str]) -> httpx.Response:
        headers = {"Origin": self.origin, "Referer": str(page.url)}
        return await self.browser.post(urljoin(str(page.url), action), data=fields, headers=headers)

    async def _follow(self, response: httpx.Response) -> httpx.Response:
        """Redirects within the site, as a browser would."""
        while response.status_code in (301, 302, 303) and response.headers["location"].startswith(("/", self.origin)):
            response = await self.browser.get(urljoin(str(response.url), response.headers["location"]))
        assert response.status_code == 200, response.text[:2000]
        return response


def text_of(result: Any) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


async def test_the_sdk_client_discovers_registers_authorizes_calls_and_refreshes(cluster: Cluster) -> None:
    storage, person = Storage(), Person(cluster)
    provider = OAuthClientProvider(
        server_url=cluster.mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="SDK flow test",
            redirect_uris=[CALLBACK],  # type: ignore[list-item]  # pydantic turns it into a URL
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            scope="mcp:read mcp:write",
        ),
        storage=storage,
        redirect_handler=person.open,
        callback_handler=person.callback,
    )
    http = httpx.AsyncClient(auth=provider, verify=cluster.ssl_context(), timeout=httpx.Timeout(15.0, read=30.0))
    async with http, Client(streamable_http_client(cluster.mcp_url, http_client=http), mode="legacy") as client:
        found = await client.call_tool("search_decisions", {"limit": 3})
        assert not found.is_error, text_of(found)
        proposed = await client.call_tool(
            "propose_decision",
            {
                "title": "Connect through the embedded authorization server",
                "category": "Auth",
                "context": "A newcomer's first client.",
                "decision": "Use the SDK's OAuth provider.",
                "consequences": "No token handling by hand.",
            },
        )
        assert not proposed.is_error, text_of(proposed)

        # The access token runs out: the client refreshes instead of asking the user again.
        await anyio.sleep(TOKEN_SECONDS + 1)
        again = await client.call_tool("read_decision", {"number": 1})
        assert not again.is_error, text_of(again)

    # Registered once (RFC 7591). Authorized in the browser with PKCE S256 for this resource:
    # first for what the 401 asked (reading), then, on the write tool's 403, stepped up to writing.
    assert storage.client_info is not None
    asked = [parse_qs(urlsplit(url).query) for url in person.authorizations]
    assert [query["scope"] for query in asked] == [["mcp:read"], ["mcp:read mcp:write"]]
    assert all(query["code_challenge_method"] == ["S256"] for query in asked)
    assert all(query["resource"] == [cluster.mcp_url] for query in asked)
    # Each redirect named its issuer (RFC 9207).
    assert all(parse_qs(urlsplit(url).query)["iss"] == [cluster.url] for url in person.redirects)
    # Three tokens: reading, stepped up, then the refresh's, with the refresh token rotated.
    assert len(storage.tokens) == 3
    read_only, stepped_up, refreshed = storage.tokens
    assert read_only.scope == "mcp:read"
    assert stepped_up.scope == refreshed.scope == "mcp:read mcp:write"
    assert refreshed.access_token != stepped_up.access_token
    assert refreshed.refresh_token not in (None, stepped_up.refresh_token)
