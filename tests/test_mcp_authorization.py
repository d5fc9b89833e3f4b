"""/mcp as a resource server on a real node: challenges, hostile tokens, scopes, sessions bound to their user.

The node checks JWTs of an external issuer (tests/token_issuer.py, a real HTTP
server on loopback publishing its keys) and hosts the decision log, whose
tools declare read or write.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest

from tests.mcp_http import (
    BASE_HEADERS,
    initialize_body,
    modern_headers,
    modern_request,
    session_headers,
    sse_events,
)
from tests.nodes import REPO, Node, manage
from tests.token_issuer import OTHER_KEY, Issuer, claims_for, sign, unsigned

RESOURCE = "http://127.0.0.1/mcp"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    served = Issuer()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def node(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    workdir = tmp_path_factory.mktemp("auth")
    env = {
        "DJANGO_SQLITE_PATH": str(workdir / "db.sqlite3"),
        "MCP_SERVER": "graphql_app.mcp.server.server",
        "MCP_AUTH": "jwt",
        "MCP_AUTH_ISSUER": issuer.url,
        "MCP_RESOURCE_URI": RESOURCE,
    }
    manage(env, "migrate", "--noinput")
    started = Node(env=env, log_path=workdir / "node.log").start()
    yield started
    started.stop()


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {**headers, "Authorization": f"Bearer {token}"}


def challenge_params(response: httpx.Response) -> dict[str, str]:
    header = response.headers["www-authenticate"]
    assert header.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def json_of(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return json.loads(sse_events(response.text)[-1]["data"])
    return response.json()


def open_session(node: Node, token: str) -> str:
    response = httpx.post(node.mcp_url, json=initialize_body(), headers=bearer(token, **BASE_HEADERS))
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    response = httpx.post(node.mcp_url, json=initialized, headers=bearer(token, **session_headers(session_id)))
    assert response.status_code == 202
    return session_id


def call(node: Node, token: str, session_id: str, method: str, params: dict[str, Any] | None = None) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}}
    return httpx.post(node.mcp_url, json=body, headers=bearer(token, **session_headers(session_id)))


# --- no token, bad tokens ----------------------------------------------------------


def test_no_token_gets_401_pointing_at_the_resource_metadata(node: Node, issuer: Issuer) -> None:
    for body, headers in (
        (initialize_body(), BASE_HEADERS),
        (modern_request("tools/list"), modern_headers("tools/list")),
    ):
        response = httpx.post(node.mcp_url, json=body, headers=headers)
        assert response.status_code == 401
        params = challenge_params(response)
        assert params["resource_metadata"] == "http://127.0.0.1/.well-known/oauth-protected-resource/mcp"
        assert params["scope"] == "mcp:read"
        assert "error" not in params
    # The document the challenge names (served by the node under the same path).
    metadata = httpx.get(f"{node.url}/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == RESOURCE
    assert metadata["authorization_servers"] == [issuer.url]
    assert metadata["scopes_supported"] == ["mcp:read", "mcp:write"]
    assert httpx.get(f"{node.url}/.well-known/oauth-protected-resource/other").status_code == 404


@pytest.mark.parametrize(
    "hostile",
    ["expired", "wrong-audience", "other-resource", "wrong-issuer", "bad-signature", "alg-none", "not-a-jwt"],
)
def test_hostile_tokens_get_401_invalid_token(node: Node, issuer: Issuer, hostile: str) -> None:
    claims = claims_for(issuer.url, RESOURCE)
    makers: dict[str, Callable[[], str]] = {
        "expired": lambda: sign({**claims, "exp": int(claims["iat"]) - 120}),
        "wrong-audience": lambda: sign({**claims, "aud": "http://127.0.0.1/graphql"}),
        "other-resource": lambda: sign({**claims, "aud": "https://elsewhere.example/mcp"}),
        "wrong-issuer": lambda: sign({**claims, "iss": "https://evil.example"}),
        "bad-signature": lambda: sign(claims, key=OTHER_KEY),
        "alg-none": lambda: unsigned(claims),
        "not-a-jwt": lambda: "opaque-token-value",
    }
    token = makers[hostile]()
    response = httpx.post(node.mcp_url, json=initialize_body(), headers=bearer(token, **BASE_HEADERS))
    assert response.status_code == 401, response.text
    assert challenge_params(response)["error"] == "invalid_token"
    assert "mcp-session-id" not in response.headers


# --- scopes --------------------------------------------------------------------------


def test_a_read_token_reads_and_is_told_to_step_up_for_a_write(node: Node, issuer: Issuer) -> None:
    reader = issuer.token(RESOURCE, scope="mcp:read")
    session_id = open_session(node, reader)
    listed = json_of(call(node, reader, session_id, "tools/list"))["result"]["tools"]
    read_only = {tool["name"]: tool.get("annotations", {}).get("readOnlyHint") for tool in listed}
    assert read_only == {
        "search_decisions": True,
        "read_decision": True,
        "propose_decision": False,
        "change_decision_status": False,
    }
    search = call(node, reader, session_id, "tools/call", {"name": "search_decisions", "arguments": {}})
    assert search.status_code == 200
    assert json_of(search)["result"]["isError"] is False

    proposal = {
        "title": "Written by a reader",
        "category": "Security",
        "context": "c",
        "decision": "d",
        "consequences": "e",
    }
    refused = call(node, reader, session_id, "tools/call", {"name": "propose_decision", "arguments": proposal})
    assert refused.status_code == 403
    params = challenge_params(refused)
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "mcp:read mcp:write"
    found = call(node, reader, session_id, "tools/call", {"name": "search_decisions", "arguments": {"text": "reader"}})
    assert "Written by a reader" not in json_of(found)["result"]["content"][0]["text"]

    # Stepped up: a token for the same user with both scopes carries on in the same session.
    writer = issuer.token(RESOURCE, scope="mcp:read mcp:write")
    done = call(node, writer, session_id, "tools/call", {"name": "propose_decision", "arguments": proposal})
    assert done.status_code == 200
    assert json_of(done)["result"]["isError"] is False


def test_the_stateless_era_checks_the_same_scopes(node: Node, issuer: Issuer) -> None:
    reader = issuer.token(RESOURCE, scope="mcp:read")
    arguments = {"name": "change_decision_status", "arguments": {"number": 1, "status": "accepted"}}
    response = httpx.post(
        node.mcp_url,
        json=modern_request("tools/call", arguments),
        headers=bearer(reader, **modern_headers("tools/call", "change_decision_status")),
    )
    assert response.status_code == 403
    assert challenge_params(response)["error"] == "insufficient_scope"
    listed = httpx.post(
        node.mcp_url, json=modern_request("tools/list"), headers=bearer(reader, **modern_headers("tools/list"))
    )
    assert listed.status_code == 200


def test_a_token_without_the_read_scope_cannot_open_a_session(node: Node, issuer: Issuer) -> None:
    response = httpx.post(
        node.mcp_url, json=initialize_body(), headers=bearer(issuer.token(RESOURCE, scope="profile"), **BASE_HEADERS)
    )
    assert response.status_code == 403
    assert challenge_params(response)["scope"] == "profile mcp:read"


# --- sessions bound to their user -------------------------------------------------------


def test_another_users_token_on_a_session_gets_the_unknown_session_404(node: Node, issuer: Issuer) -> None:
    alice = issuer.token(RESOURCE, sub="alice", scope="mcp:read mcp:write")
    mallory = issuer.token(RESOURCE, sub="mallory", scope="mcp:read mcp:write")
    session_id = open_session(node, alice)
    unknown = call(node, mallory, f"{session_id[:-4]}beef", "ping")
    assert unknown.status_code == 404

    for response in (
        call(node, mallory, session_id, "ping"),
        httpx.get(node.mcp_url, headers=bearer(mallory, **session_headers(session_id, Accept="text/event-stream"))),
        httpx.delete(node.mcp_url, headers=bearer(mallory, **session_headers(session_id))),
    ):
        assert response.status_code == 404
        # Word for word the answer for an id that never existed: nothing tells this one does.
        assert response.json()["error"] == unknown.json()["error"]
        assert "mcp-session-id" not in response.headers

    # Alice's session is untouched (Mallory's DELETE closed nothing).
    assert call(node, alice, session_id, "ping").status_code == 200
    # No token at all on a live session: 401, not 404 (the token comes first).
    anonymous = httpx.post(
        node.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=session_headers(session_id)
    )
    assert anonymous.status_code == 401


def test_the_same_user_with_a_new_token_keeps_the_session(node: Node, issuer: Issuer) -> None:
    first = issuer.token(RESOURCE, sub="bob")
    session_id = open_session(node, first)
    refreshed = issuer.token(RESOURCE, sub="bob")
    assert refreshed != first
    assert call(node, refreshed, session_id, "ping").status_code == 200


# --- defaults ----------------------------------------------------------------------------


def settle(**env: str) -> subprocess.CompletedProcess[str]:
    """Load the serving application (mcpsite.asgi) with production settings plus `env`; print MCP_AUTH."""
    base = {name: value for name, value in os.environ.items() if name not in ("MCP_AUTH", "DJANGO_DEBUG")}
    code = "import mcpsite.asgi; from django.conf import settings; print(settings.MCP_AUTH)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "mcpsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_tokens_are_required_unless_debugging_or_written_off() -> None:
    assert settle().stdout.strip() == "embedded"
    assert settle(DJANGO_DEBUG="0").stdout.strip() == "embedded"
    debugging = settle(DJANGO_DEBUG="1")
    assert debugging.stdout.strip() == "off"
    assert "Authorization is OFF" in debugging.stderr
    written_off = settle(MCP_AUTH="off")
    assert written_off.stdout.strip() == "off"
    assert "Authorization is OFF" in written_off.stderr


def test_a_bad_authorization_setting_stops_the_node_at_start() -> None:
    for env in ({"MCP_AUTH": "maybe"}, {"MCP_AUTH": "jwt"}, {"MCP_AUTH_ALGORITHMS": "RS256,HS256"}):
        refused = settle(**env)
        assert refused.returncode != 0
        assert "ImproperlyConfigured" in refused.stderr
