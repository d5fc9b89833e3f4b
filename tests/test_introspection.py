"""MCP_AUTH=introspection against a real RFC 7662 endpoint: one node is the issuer, another asks it about tokens.

The issuer is the embedded authorization server of node `issuer` (its
`/oauth/introspect`); node `resource` has no keys at all and trusts only the
answers, which it keeps for MCP_AUTH_CACHE_SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.mcp_http import modern_headers, modern_request
from tests.nodes import Node, manage

RESOURCE = "http://127.0.0.1/mcp"
CLIENT_ID, CLIENT_SECRET = "resource-server", "s3cret-of-the-resource-server"
CACHE_SECONDS = 1.0

REGISTER = f"""
from django.contrib.auth.models import User
from oauth2_provider.models import get_application_model
User.objects.create_user("carol")
Application = get_application_model()
Application.objects.create(
    name="the resource server", client_id={CLIENT_ID!r}, client_secret={CLIENT_SECRET!r},
    client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
)
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node, dict[str, str]]]:
    workdir: Path = tmp_path_factory.mktemp("introspection")
    common = {"DJANGO_SQLITE_PATH": str(workdir / "db.sqlite3"), "MCP_RESOURCE_URI": RESOURCE}
    issuer_env = {**common, "MCP_AUTH": "embedded"}
    manage(issuer_env, "migrate", "--noinput")
    manage(issuer_env, "shell", "-c", REGISTER)
    issuer = Node(env=issuer_env, log_path=workdir / "issuer.log").start()
    resource = Node(
        env={
            **common,
            "MCP_AUTH": "introspection",
            # The embedded server's issuer is the origin of MCP_RESOURCE_URI.
            "MCP_AUTH_ISSUER": "http://127.0.0.1",
            "MCP_AUTH_INTROSPECTION_URL": f"{issuer.url}/oauth/introspect",
            "MCP_AUTH_CLIENT_ID": CLIENT_ID,
            "MCP_AUTH_CLIENT_SECRET": CLIENT_SECRET,
            "MCP_AUTH_CACHE_SECONDS": str(CACHE_SECONDS),
            # This node serves no authorization server of its own.
            "OAUTH_SERVER": "0",
        },
        log_path=workdir / "resource.log",
    ).start()
    yield issuer, resource, issuer_env
    resource.stop()
    issuer.stop()


def tools_list(node: Node, token: str) -> httpx.Response:
    headers = {**modern_headers("tools/list"), "Authorization": f"Bearer {token}"}
    return httpx.post(node.mcp_url, json=modern_request("tools/list"), headers=headers)


def test_an_active_token_is_accepted_and_a_revoked_one_refused_within_the_cache_time(
    nodes: tuple[Node, Node, dict[str, str]],
) -> None:
    _, resource, env = nodes
    token = manage(env, "mint_token", "carol", "--scope", "mcp:read mcp:write").strip()
    assert tools_list(resource, token).status_code == 200

    revoke = (
        "import hashlib; from oauth2_provider.models import AccessToken; "
        f"AccessToken.objects.get(token_checksum=hashlib.sha256({token!r}.encode()).hexdigest()).revoke()"
    )
    manage(env, "shell", "-c", revoke)
    time.sleep(CACHE_SECONDS + 0.2)
    refused = tools_list(resource, token)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert "not active" in refused.headers["www-authenticate"]


def test_unknown_tokens_are_refused(nodes: tuple[Node, Node, dict[str, str]]) -> None:
    _, resource, _ = nodes
    refused = tools_list(resource, "an-opaque-token-nobody-issued")
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_wrong_credentials_at_the_endpoint_refuse_every_token(
    nodes: tuple[Node, Node, dict[str, str]], tmp_path: Path
) -> None:
    _, resource, env = nodes
    token = manage(env, "mint_token", "carol", "--scope", "mcp:read").strip()
    impostor = Node(
        env={**resource.env, "MCP_AUTH_CLIENT_SECRET": "not-the-secret"}, log_path=tmp_path / "impostor.log"
    ).start()
    try:
        refused = tools_list(impostor, token)
        assert refused.status_code == 401
        assert "introspection failed" in refused.headers["www-authenticate"]
    finally:
        impostor.stop()
    assert tools_list(resource, token).status_code == 200
