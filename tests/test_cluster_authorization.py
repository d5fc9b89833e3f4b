"""Authorization across a cluster: three daphne nodes, one Redis, one database, the embedded authorization server.

A token minted once works on every node; a session stays its user's through
the relay and through adoption; a revoked token stops working everywhere
within MCP_AUTH_CACHE_SECONDS.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.mcp_http import (
    BASE_HEADERS,
    initialize_body,
    modern_headers,
    modern_request,
    session_headers,
    sse_messages,
)
from tests.nodes import Node, manage, node_maker
from tests.redis_server import RedisServer
from tests.test_cluster import session_key, wait_for

RESOURCE = "http://127.0.0.1/mcp"
FAST = {"MCP_NODE_HEARTBEAT_TTL": "1.5", "MCP_REAPER_INTERVAL": "0.3", "MCP_STALE_GRACE": "1"}
PING = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
LISTING = {"jsonrpc": "2.0", "id": 4, "method": "resources/list"}


@pytest.fixture(scope="module")
def shared_env(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("cluster-auth")
    env = {
        "REDIS_URL": redis_server.url,
        "DJANGO_SQLITE_PATH": str(workdir / "db.sqlite3"),
        "MCP_SERVER": "graphql_app.mcp.server.server",
        "MCP_AUTH": "embedded",
        "MCP_RESOURCE_URI": RESOURCE,
        # Revocation is noticed within this (the documented bound), short for the test.
        "MCP_AUTH_CACHE_SECONDS": "1",
        **FAST,
    }
    manage(env, "migrate", "--noinput")
    create_users = (
        "from django.contrib.auth.models import User; [User.objects.create_user(n) for n in ('alice', 'mallory')]"
    )
    manage(env, "shell", "-c", create_users)
    return env


@pytest.fixture(scope="module")
def tokens(shared_env: dict[str, str]) -> dict[str, str]:
    """Each user's token, minted once with one node's environment."""
    scope = "mcp:read mcp:write"
    return {user: manage(shared_env, "mint_token", user, "--scope", scope).strip() for user in ("alice", "mallory")}


@pytest.fixture(scope="module")
def survivors(shared_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    logs = tmp_path_factory.mktemp("survivors")
    nodes = [Node(env={**shared_env, "MCP_NODE_ID": name}, log_path=logs / f"{name}.log") for name in ("b", "c")]
    for node in nodes:
        node.start()
    yield nodes[0], nodes[1]
    for node in nodes:
        node.stop(signal.SIGKILL)


@pytest.fixture
def owner(shared_env: dict[str, str], tmp_path: Path) -> Iterator[Node]:
    with node_maker(tmp_path, shared_env) as start:
        yield start("a")


def post(node: Node, token: str, body: dict[str, Any], session_id: str) -> httpx.Response:
    headers = {**session_headers(session_id), "Authorization": f"Bearer {token}"}
    return httpx.post(node.mcp_url, json=body, headers=headers, timeout=15.0)


def initialize(node: Node, token: str) -> str:
    answer = httpx.post(
        node.mcp_url, json=initialize_body(), headers={**BASE_HEADERS, "Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    session_id = answer.headers["mcp-session-id"]
    assert post(node, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session_id).status_code == 202
    return session_id


def registry_record(redis_server: RedisServer, session_id: str) -> dict[str, Any] | None:
    raw = redis_server.client().get(session_key(session_id))
    return None if raw is None else dict(json.loads(raw))


def test_a_token_minted_once_works_on_every_node(
    owner: Node, survivors: tuple[Node, Node], tokens: dict[str, str]
) -> None:
    for node in (owner, *survivors):
        listed = httpx.post(
            node.mcp_url,
            json=modern_request("tools/list"),
            headers={**modern_headers("tools/list"), "Authorization": f"Bearer {tokens['alice']}"},
        )
        assert listed.status_code == 200, listed.text
        initialize(node, tokens["alice"])


def test_the_relay_keeps_a_session_its_users(
    owner: Node, survivors: tuple[Node, Node], tokens: dict[str, str], redis_server: RedisServer
) -> None:
    b, c = survivors
    session_id = initialize(owner, tokens["alice"])
    wait_for(lambda: registry_record(redis_server, session_id) is not None, "the session's record")
    record = registry_record(redis_server, session_id)
    assert record is not None
    # The principal is the embedded issuer and the user's id: what the admin shows.
    issuer, _, subject = record["principal"].partition(" ")
    assert issuer == "http://127.0.0.1"
    assert subject.isdigit()

    unknown = post(b, tokens["mallory"], PING, f"{session_id[:-4]}beef")
    assert unknown.status_code == 404
    for node in (b, c, owner):
        stolen = post(node, tokens["mallory"], PING, session_id)
        assert stolen.status_code == 404
        assert stolen.json()["error"] == unknown.json()["error"]
    # Alice through another node: relayed to the owner and answered.
    assert post(c, tokens["alice"], PING, session_id).status_code == 200


def test_adoption_keeps_a_session_its_users(
    owner: Node, survivors: tuple[Node, Node], tokens: dict[str, str], redis_server: RedisServer
) -> None:
    b, c = survivors
    session_id = initialize(owner, tokens["alice"])
    wait_for(lambda: registry_record(redis_server, session_id) is not None, "the session's record")
    owner.stop(signal.SIGKILL)

    # Mallory reaches the orphan first: 404, and no node adopts it for her.
    stolen = post(b, tokens["mallory"], LISTING, session_id)
    assert stolen.status_code == 404
    assert "Adopted MCP session" not in b.log()
    record = registry_record(redis_server, session_id)
    assert record is not None
    assert record["node_id"] == "a"

    # Alice carries on: adopted by the node she reaches, same principal in the record.
    answer = post(c, tokens["alice"], LISTING, session_id)
    assert answer.status_code == 200, answer.text
    assert sse_messages(answer.text)[-1]["result"]["resources"] is not None
    adopted = registry_record(redis_server, session_id)
    assert adopted is not None
    assert adopted["node_id"] == "c"
    assert adopted["principal"] == record["principal"]
    assert post(b, tokens["mallory"], PING, session_id).status_code == 404


def test_a_revoked_token_stops_working_on_every_node_within_the_cache_time(
    owner: Node, survivors: tuple[Node, Node], shared_env: dict[str, str]
) -> None:
    token = manage(shared_env, "mint_token", "alice", "--scope", "mcp:read").strip()
    nodes = (owner, *survivors)
    sessions = [initialize(node, token) for node in nodes]
    # Revoked as the revocation endpoint does it: the token's row goes.
    revoke = (
        "import hashlib; from oauth2_provider.models import AccessToken; "
        f"AccessToken.objects.get(token_checksum=hashlib.sha256({token!r}.encode()).hexdigest()).revoke()"
    )
    manage(shared_env, "shell", "-c", revoke)

    def refused_everywhere() -> bool:
        return all(
            post(node, token, PING, session).status_code == 401 for node, session in zip(nodes, sessions, strict=True)
        )

    wait_for(refused_everywhere, "every node to refuse the revoked token", timeout=5.0)
    answer = post(owner, token, PING, sessions[0])
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert "revoked" in answer.headers["www-authenticate"]
