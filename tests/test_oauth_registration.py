"""Clients the authorization server did not know: dynamic registration, metadata documents; and its start-up checks."""

from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import Settings

from tests.oauth_flow import REDIRECT_URI, OAuthClient, tokens_for

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def alice(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("alice", password=None)


def register(client: Client, metadata: object) -> tuple[int, dict[str, object]]:
    response = client.post("/oauth/register", json.dumps(metadata), content_type="application/json")
    return response.status_code, response.json()


# --- dynamic client registration (RFC 7591) --------------------------------------------


def test_a_public_client_registers_anonymously_and_completes_the_flow(client: Client, alice: User) -> None:
    status, body = register(
        client,
        {"client_name": "Desktop app", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"},
    )

    assert status == 201, body
    assert body["token_endpoint_auth_method"] == "none"  # noqa: S105
    assert "client_secret" not in body
    tokens = tokens_for(client, OAuthClient(str(body["client_id"]), None), alice, scope="mcp:read")
    assert tokens["access_token"].count(".") == 2


def test_a_client_like_the_sdk_gets_a_secret_and_completes_the_flow(client: Client, alice: User) -> None:
    # What the MCP Python SDK sends (OAuthClientMetadata, dumped without None fields).
    sdk_metadata = {
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "mcp sdk client",
        "scope": "mcp:read mcp:write",
    }

    status, body = register(client, sdk_metadata)

    assert status == 201, body
    secret = body["client_secret"]
    assert isinstance(secret, str)
    assert len(secret) >= 32
    tokens = tokens_for(client, OAuthClient(str(body["client_id"]), secret), alice)
    assert tokens["token_type"] == "Bearer"  # noqa: S105


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://example.com/callback", "http://10.0.0.1/callback", "javascript:alert(1)", "ftp://127.0.0.1/x"],
)
def test_unsafe_redirect_uris_are_refused(client: Client, redirect_uri: str) -> None:
    status, body = register(client, {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none"})

    assert status == 400
    assert body["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "payload",
    [[], "text", {"redirect_uris": "http://127.0.0.1/cb"}, {"redirect_uris": [1]}, {"grant_types": ["password"]}],
)
def test_malformed_registrations_are_client_errors(client: Client, payload: object) -> None:
    status, body = register(client, payload)

    assert status == 400
    assert body["error"] == "invalid_client_metadata"


def test_a_body_that_is_not_json_is_a_client_error(client: Client) -> None:
    response = client.post("/oauth/register", "{not json", content_type="application/json")

    assert response.status_code == 400


# --- client ID metadata documents --------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def document_server(authority: trustme.CA) -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """An https server on 127.0.0.1 serving the JSON documents put in its dict, by path; and the paths asked."""
    documents: dict[str, bytes] = {}
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", documents, asked
    server.shutdown()
    server.server_close()


@pytest.fixture
def trust_authority(authority: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this process's default TLS context trust the test CA (and nothing else)."""
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))


def client_document(client_id: str) -> bytes:
    return json.dumps(
        {
            "client_id": client_id,
            "client_name": "Metadata document client",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
        }
    ).encode()


@pytest.mark.usefixtures("trust_authority")
def test_a_cimd_client_on_loopback_completes_the_flow_when_allowed(
    client: Client, alice: User, settings: Settings, document_server: tuple[str, dict[str, bytes], list[str]]
) -> None:
    settings.OAUTH_CIMD_ALLOW_LOOPBACK = True
    base, documents, asked = document_server
    client_id = f"{base}/clients/allowed.json"
    documents["/clients/allowed.json"] = client_document(client_id)

    tokens = tokens_for(client, OAuthClient(client_id, None), alice)

    from tests.test_oauth_server import claims_of

    assert claims_of(tokens["access_token"])["client_id"] == client_id
    assert "/clients/allowed.json" in asked


@pytest.mark.usefixtures("trust_authority")
def test_a_cimd_client_on_loopback_is_refused_by_default(
    client: Client, alice: User, document_server: tuple[str, dict[str, bytes], list[str]]
) -> None:
    assert settings.OAUTH_CIMD_ALLOW_LOOPBACK is False
    base, documents, asked = document_server
    client_id = f"{base}/clients/refused.json"
    documents["/clients/refused.json"] = client_document(client_id)
    client.force_login(alice)

    response = client.get(
        "/oauth/authorize",
        {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "code_challenge": "x" * 43},
    )

    # An unknown client: an error page, never a redirect to the document's URIs;
    # DOT's fetcher refused the private address without connecting.
    assert response.status_code == 400
    assert asked == []


# --- start-up --------------------------------------------------------------------------


def check_with(**env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check` in production mode with exactly this environment (and PATH)."""
    child = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "mcpsite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 50,
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=child, capture_output=True, text=True, timeout=60
    )


def test_without_a_signing_key_production_refuses_to_start() -> None:
    result = check_with()

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "OAUTH_SIGNING_KEY_FILE" in result.stderr


def test_an_unreadable_signing_key_file_refuses_to_start(tmp_path: Path) -> None:
    result = check_with(OAUTH_SIGNING_KEY_FILE=str(tmp_path / "missing.pem"))

    assert result.returncode != 0
    assert "cannot be read" in result.stderr


def test_production_starts_with_a_key_or_without_the_server() -> None:
    assert check_with(OAUTH_SIGNING_KEY_FILE=os.environ["OAUTH_SIGNING_KEY_FILE"]).returncode == 0
    assert check_with(OAUTH_SERVER="0").returncode == 0
