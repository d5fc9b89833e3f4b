"""The embedded authorization server (oauth_app) through Django's test client."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from oauth_app import keys, tokens
from tests.oauth_flow import (
    OAuthClient,
    authorize_params,
    consent,
    exchange,
    pkce,
    redirect_query,
    register,
    tokens_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model: type[User]) -> User:
    """An ordinary user: not staff, so the admin's own login would refuse her."""
    return django_user_model.objects.create_user("alice", password="a long passphrase 42")  # noqa: S106


@pytest.fixture
def client_app() -> OAuthClient:
    return register()


def claims_of(token: str, **expected: Any) -> dict[str, Any]:
    """Verify `token` as the resource server will: by kid, RS256, our issuer and audience."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    key = keys.verification_keys()[header["kid"]]
    audience = expected.pop("audience", settings.MCP_RESOURCE_URI)
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], audience=audience, issuer=settings.OAUTH_ISSUER
    )
    return claims


# --- metadata -------------------------------------------------------------------


def test_metadata_describes_the_server(client: Client) -> None:
    response = client.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    data = response.json()
    issuer = settings.OAUTH_ISSUER
    assert data["issuer"] == issuer == "http://127.0.0.1:8000"
    assert data["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert data["token_endpoint"] == f"{issuer}/oauth/token"
    assert data["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert data["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert data["registration_endpoint"] == f"{issuer}/oauth/register"
    assert data["jwks_uri"] == f"{issuer}/oauth/jwks"
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert data["client_id_metadata_document_supported"] is True
    assert data["authorization_response_iss_parameter_supported"] is True
    assert data["scopes_supported"] == ["mcp:read", "mcp:write"]
    assert data["response_types_supported"] == ["code"]
    assert set(data["grant_types_supported"]) == {"authorization_code", "refresh_token"}


def test_jwks_publishes_the_signing_key_under_its_thumbprint(client: Client) -> None:
    data = client.get("/oauth/jwks").json()

    assert [key["kid"] for key in data["keys"]] == [keys.signing_kid()]
    published = jwt.PyJWK(data["keys"][0]).key
    assert published.public_numbers() == keys.signing_key().public_key().public_numbers()


def test_previous_keys_stay_published_and_accepted_after_a_rotation(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    old_key_file = tmp_path / "old.pem"
    keys.create_key_file(old_key_file)
    old_private = serialization.load_pem_private_key(old_key_file.read_bytes(), password=None)
    assert isinstance(old_private, rsa.RSAPrivateKey)
    old_public = old_private.public_key()
    previous = tmp_path / "previous.pem"
    pem = old_public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    previous.write_bytes(pem)
    settings.OAUTH_PREVIOUS_SIGNING_KEYS_FILE = str(previous)
    old_kid = keys.thumbprint(old_public)
    signed_before = jwt.encode({"sub": "1"}, old_private, algorithm="RS256", headers={"kid": old_kid})

    published = [key["kid"] for key in client.get("/oauth/jwks").json()["keys"]]

    assert published == [keys.signing_kid(), old_kid]
    verified = jwt.decode(signed_before, keys.verification_keys()[old_kid], algorithms=["RS256"])
    assert verified["sub"] == "1"


# --- login and consent ------------------------------------------------------------


def test_the_applications_admin_is_for_staff_only(client: Client, alice: User) -> None:
    url = reverse("admin:oauth2_provider_application_changelist")
    client.force_login(alice)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_an_ordinary_user_logs_in_on_the_way_to_consent(client: Client, client_app: OAuthClient, alice: User) -> None:
    _, challenge = pkce()
    params = authorize_params(client_app, challenge)

    first = client.get("/oauth/authorize", params)
    assert first.status_code == 302
    login_url = first["Location"]
    assert login_url.startswith("/oauth/login?next=")
    page = client.get(login_url)
    assert page.status_code == 200
    assert b'id="login-form"' in page.content  # the admin's login page, styled as such
    logged_in = client.post(login_url, {"username": "alice", "password": "a long passphrase 42"})
    assert logged_in.status_code == 302
    consent_page = client.get(logged_in["Location"])

    assert consent_page.status_code == 200
    html = consent_page.content.decode()
    assert "Test client" in html
    assert settings.OAUTH2_PROVIDER["SCOPES"]["mcp:read"] in html
    assert settings.MCP_RESOURCE_URI in html


def test_deny_sends_access_denied_with_state_and_iss(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)
    _, challenge = pkce()

    query = consent(client, authorize_params(client_app, challenge), allow=False)

    assert query["error"] == ["access_denied"]
    assert query["state"] == ["state-123"]
    assert query["iss"] == [settings.OAUTH_ISSUER]
    assert "code" not in query


# --- the code flow -------------------------------------------------------------------


def test_code_flow_issues_a_jwt_per_the_contract(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)
    verifier, challenge = pkce()

    query = consent(client, authorize_params(client_app, challenge, scope="mcp:read mcp:write"))
    assert query["iss"] == [settings.OAUTH_ISSUER]
    assert query["state"] == ["state-123"]
    response = exchange(client, client_app, query["code"][0], verifier)

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"  # noqa: S105
    assert body["expires_in"] == settings.OAUTH_ACCESS_TOKEN_SECONDS
    claims = claims_of(body["access_token"])
    assert claims["sub"] == str(alice.pk)
    assert claims["client_id"] == client_app.client_id
    assert claims["scope"] == "mcp:read mcp:write"
    assert claims["aud"] == settings.MCP_RESOURCE_URI
    assert claims["exp"] - claims["iat"] == settings.OAUTH_ACCESS_TOKEN_SECONDS
    assert abs(claims["iat"] - time.time()) < 60
    assert len(claims["jti"]) >= 16
    assert tokens.is_active(body["access_token"])
    # Refresh tokens stay opaque.
    assert body["refresh_token"].count(".") == 0


def test_the_requested_resource_becomes_the_audience(client: Client, client_app: OAuthClient, alice: User) -> None:
    body = tokens_for(client, client_app, alice, resource=settings.MCP_RESOURCE_URI)

    assert claims_of(body["access_token"])["aud"] == settings.MCP_RESOURCE_URI


def test_a_client_asking_no_scope_gets_read_only(client: Client, client_app: OAuthClient, alice: User) -> None:
    body = tokens_for(client, client_app, alice)

    assert claims_of(body["access_token"])["scope"] == "mcp:read"


def test_plain_pkce_is_refused_before_consent(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)
    verifier, _ = pkce()

    response = client.get("/oauth/authorize", authorize_params(client_app, verifier, code_challenge_method="plain"))

    assert response.status_code == 302
    query = redirect_query(response)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["state-123"]


def test_a_challenge_without_method_is_refused_as_plain(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)
    verifier, _ = pkce()

    response = client.get("/oauth/authorize", authorize_params(client_app, verifier, code_challenge_method=""))

    assert redirect_query(response)["error"] == ["invalid_request"]


def test_missing_pkce_is_refused(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)

    response = client.get("/oauth/authorize", authorize_params(client_app, "", code_challenge_method=""))

    query = redirect_query(response)
    assert query["error"] == ["invalid_request"]
    assert "challenge" in query["error_description"][0].lower()


def test_a_wrong_verifier_gets_no_token(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)
    _, challenge = pkce()
    query = consent(client, authorize_params(client_app, challenge))

    response = exchange(client, client_app, query["code"][0], pkce()[0])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_a_foreign_resource_is_refused_at_authorization(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)
    _, challenge = pkce()

    response = client.get(
        "/oauth/authorize", authorize_params(client_app, challenge, resource="https://elsewhere.example/mcp")
    )

    assert response.status_code == 302
    query = redirect_query(response)
    assert query["error"] == ["invalid_target"]
    assert query["state"] == ["state-123"]
    assert query["iss"] == [settings.OAUTH_ISSUER]


def test_a_foreign_resource_is_refused_at_the_token_endpoint(
    client: Client, client_app: OAuthClient, alice: User
) -> None:
    client.force_login(alice)
    verifier, challenge = pkce()
    query = consent(client, authorize_params(client_app, challenge))

    response = exchange(client, client_app, query["code"][0], verifier, resource="https://elsewhere.example/mcp")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_a_malformed_resource_is_a_client_error(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)
    _, challenge = pkce()

    response = client.get("/oauth/authorize", authorize_params(client_app, challenge, resource="not a uri"))

    assert response.status_code == 302
    assert redirect_query(response)["error"] == ["invalid_target"]


def test_an_unknown_client_gets_an_error_page_not_a_redirect(client: Client, alice: User) -> None:
    client.force_login(alice)
    _, challenge = pkce()

    response = client.get("/oauth/authorize", authorize_params(OAuthClient("nobody", None), challenge))

    assert response.status_code == 400
    assert b"invalid_client_id" in response.content or b"invalid_request" in response.content


def test_a_token_request_without_parameters_is_a_400(client: Client, client_app: OAuthClient) -> None:
    response = client.post("/oauth/token", {}, headers=client_app.auth())

    assert response.status_code == 400


# --- refresh, revocation, introspection -------------------------------------------------


def refresh(client: Client, client_app: OAuthClient, refresh_token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return client.post("/oauth/token", data, headers=client_app.auth())


def test_refresh_rotates_and_the_old_refresh_token_is_refused(
    client: Client, client_app: OAuthClient, alice: User
) -> None:
    first = tokens_for(client, client_app, alice, scope="mcp:read mcp:write")

    refreshed = refresh(client, client_app, first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.content
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    claims = claims_of(second["access_token"])
    assert claims["sub"] == str(alice.pk)
    assert claims["scope"] == "mcp:read mcp:write"
    assert claims["aud"] == settings.MCP_RESOURCE_URI

    replay = refresh(client, client_app, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # Reuse protection: the replay revoked the whole family, the rotated token too.
    after = refresh(client, client_app, second["refresh_token"])
    assert after.status_code == 400


def test_revocation_deletes_the_row_so_is_active_turns_false(
    client: Client, client_app: OAuthClient, alice: User
) -> None:
    access = tokens_for(client, client_app, alice)["access_token"]
    assert tokens.is_active(access)

    response = client.post("/oauth/revoke", {"token": access}, headers=client_app.auth())

    assert response.status_code == 200
    assert not tokens.is_active(access)
    # The signature still verifies: revocation is known only through is_active.
    assert claims_of(access)["sub"] == str(alice.pk)


def test_is_active_is_false_for_a_token_never_issued() -> None:
    assert not tokens.is_active("eyJ.not.issued")


def test_introspection_needs_client_authentication(client: Client, client_app: OAuthClient, alice: User) -> None:
    access = tokens_for(client, client_app, alice)["access_token"]
    client.logout()

    anonymous = client.post("/oauth/introspect", {"token": access})
    wrong_secret = client.post(
        "/oauth/introspect", {"token": access}, headers=OAuthClient(client_app.client_id, "wrong").auth()
    )

    assert anonymous.status_code in (401, 403)
    assert wrong_secret.status_code in (401, 403)


def test_introspection_reports_active_then_inactive(client: Client, client_app: OAuthClient, alice: User) -> None:
    access = tokens_for(client, client_app, alice, scope="mcp:read mcp:write")["access_token"]

    active = client.post("/oauth/introspect", {"token": access}, headers=client_app.auth())
    assert active.status_code == 200
    data = active.json()
    assert data["active"] is True
    assert data["scope"] == "mcp:read mcp:write"
    assert data["client_id"] == client_app.client_id
    assert data["aud"] == [settings.MCP_RESOURCE_URI]

    client.post("/oauth/revoke", {"token": access}, headers=client_app.auth())
    inactive = client.post("/oauth/introspect", {"token": access}, headers=client_app.auth())
    assert inactive.json() == {"active": False}


# --- mint_token ------------------------------------------------------------------------


def test_mint_token_prints_a_token_that_verifies(alice: User) -> None:
    out = io.StringIO()

    call_command("mint_token", "alice", scope="mcp:read mcp:write", seconds=120, stdout=out)

    token = out.getvalue().strip()
    claims = claims_of(token)
    assert claims["sub"] == str(alice.pk)
    assert claims["scope"] == "mcp:read mcp:write"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["client_id"] == "mcpsite-mint-token"
    assert tokens.is_active(token)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nobody"], "no user"),
        (["alice", "--scope", "admin"], "unknown scope"),
        (["alice", "--seconds", "0"], "positive"),
    ],
)
def test_mint_token_refuses_bad_input(alice: User, arguments: list[str], message: str) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("mint_token", *arguments, stdout=io.StringIO())


# --- bad input ---------------------------------------------------------------------------


def bad_requests(client_app: OAuthClient, challenge: str) -> list[tuple[str, str, dict[str, str]]]:
    authorize = authorize_params(client_app, challenge)
    return [
        ("get", "/oauth/token", {}),
        ("post", "/oauth/token", {"grant_type": "password", "username": "alice", "password": "x"}),
        ("post", "/oauth/token", {"grant_type": "client_credentials", "client_id": client_app.client_id}),
        ("post", "/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x" * 5000}),
        ("post", "/oauth/revoke", {}),
        ("get", "/oauth/introspect", {}),
        ("get", "/oauth/register", {}),
        ("get", "/oauth/register/unknown", {}),
        ("get", "/oauth/authorize", {}),
        ("get", "/oauth/authorize", {"client_id": client_app.client_id}),
        ("get", "/oauth/authorize", {**authorize, "redirect_uri": "http://elsewhere.example/callback"}),
        ("get", "/oauth/authorize", {**authorize, "response_type": "token"}),
        ("get", "/oauth/authorize", {**authorize, "scope": "admin"}),
        ("get", "/oauth/authorize", {**authorize, "client_id": "https://127.0.0.1:1/client.json"}),
        # Consent POSTs that did not come from the consent page.
        ("post", "/oauth/authorize", {"client_id": client_app.client_id, "allow": "Allow"}),
        ("post", "/oauth/authorize", {**authorize, "scope": "mcp:read", "client_id": "gone", "allow": "Allow"}),
        ("post", "/oauth/jwks", {}),
        ("post", "/.well-known/oauth-authorization-server", {}),
    ]


def test_bad_requests_get_a_client_error(client: Client, client_app: OAuthClient, alice: User) -> None:
    client.force_login(alice)
    _, challenge = pkce()

    for method, url, data in bad_requests(client_app, challenge):
        response = getattr(client, method)(url, data)
        # A redirect here is an error sent back to the client's redirect URI.
        if response.status_code == 302:
            assert "error=" in response["Location"], (method, url, data)
        else:
            assert 400 <= response.status_code < 500, (method, url, data, response.status_code)
