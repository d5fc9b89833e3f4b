"""Driving the embedded authorization server through Django's test client, as a browser and a client would."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth.models import User
from django.test import Client
from oauth2_provider.models import get_application_model

REDIRECT_URI = "http://127.0.0.1:9999/callback"


@dataclass
class OAuthClient:
    client_id: str
    secret: str | None  # None: a public client

    def auth(self) -> dict[str, str]:
        """Client authentication for the token, revocation and introspection endpoints."""
        if self.secret is None:
            return {}
        basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}

    def body(self) -> dict[str, str]:
        return {"client_id": self.client_id} if self.secret is None else {}


def register(name: str = "Test client", *, confidential: bool = True, redirect_uri: str = REDIRECT_URI) -> OAuthClient:
    application_model = get_application_model()
    secret = secrets.token_urlsafe(32)
    application = application_model.objects.create(
        name=name,
        client_type=application_model.CLIENT_CONFIDENTIAL if confidential else application_model.CLIENT_PUBLIC,
        authorization_grant_type=application_model.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uri,
        client_secret=secret,
    )
    return OAuthClient(application.client_id, secret if confidential else None)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(client: OAuthClient, challenge: str, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {key: value for key, value in params.items() if value != ""}


def consent(browser: Client, params: dict[str, str], *, allow: bool = True) -> dict[str, list[str]]:
    """Open the consent page, answer it, and return the query of the redirect back to the client."""
    page = browser.get("/oauth/authorize", params)
    assert page.status_code == 200, page.content.decode()[:2000]
    form = {key: value for key, value in page.context["form"].initial.items() if value is not None}
    if allow:
        form["allow"] = "Allow"
    answer = browser.post(page.wsgi_request.get_full_path(), form)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    return redirect_query(answer)


def redirect_query(response: Any) -> dict[str, list[str]]:
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI, response["Location"]
    return parse_qs(location.query)


def exchange(browser: Client, client: OAuthClient, code: str, verifier: str, **extra: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    return browser.post("/oauth/token", {**data, **client.body(), **extra}, headers=client.auth())


def tokens_for(browser: Client, client: OAuthClient, user: User, **params: str) -> dict[str, Any]:
    """The whole code flow for a logged-in `user`: consent, code, token response."""
    browser.force_login(user)
    verifier, challenge = pkce()
    query = consent(browser, authorize_params(client, challenge, **params))
    response = exchange(browser, client, query["code"][0], verifier)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body
