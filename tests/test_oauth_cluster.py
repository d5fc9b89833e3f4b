"""The authorization server in the local cluster: one key and one issuer for all three nodes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import jwt
import pytest

from deploy.cluster import Cluster
from tests.traefik_cluster import start_test_cluster

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_test_cluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


def manage(cluster: Cluster, *args: str) -> str:
    """`manage.py` with node1's environment, as an operator on that machine."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=dict(cluster.nodes["node1"].env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_minted_token_verifies_with_the_keys_every_node_publishes(cluster: Cluster) -> None:
    manage(cluster, "shell", "-c", "from django.contrib.auth.models import User; User.objects.create_user('bob')")
    token = manage(cluster, "mint_token", "bob", "--scope", "mcp:read mcp:write").strip()
    kid = jwt.get_unverified_header(token)["kid"]

    for name in cluster.node_names:
        keys = httpx.get(f"{cluster.node_url(name)}/oauth/jwks", timeout=5).json()["keys"]
        published = {key["kid"]: key for key in keys}
        assert kid in published, f"{name} does not publish the signing key"
        claims = jwt.decode(
            token,
            jwt.PyJWK(published[kid]).key,
            algorithms=["RS256"],
            audience=cluster.mcp_url,
            issuer=cluster.url,
        )
        assert claims["scope"] == "mcp:read mcp:write"


def test_the_metadata_names_the_proxy_as_issuer(cluster: Cluster) -> None:
    with httpx.Client(verify=cluster.ssl_context(), timeout=5) as client:
        metadata = client.get(f"{cluster.url}/.well-known/oauth-authorization-server").json()

    assert metadata["issuer"] == cluster.url
    assert metadata["token_endpoint"] == f"{cluster.url}/oauth/token"
