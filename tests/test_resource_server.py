"""The resource server's token checks, without HTTP: hostile tokens, scopes, the cache and key rotation.

Tokens are signed here with keys made for the test; the issuer's JWKS for
`RemoteKeys` is served by a real HTTP server on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from sessions_app.auth import jwt_verifier
from sessions_app.auth.conf import AuthMode, AuthSettings
from sessions_app.auth.jwt_verifier import JwtVerifier, LocalKeys, RemoteKeys
from sessions_app.auth.principal import InvalidToken, Principal
from sessions_app.auth.resource import AuthFailure, ResourceServer
from tests.token_issuer import KEY, OTHER_KEY, Issuer, unsigned

ISSUER = "https://issuer.test"
RESOURCE = "https://mcp.test/mcp"


def token(key: Any = KEY, kid: str = "k1", algorithm: str = "RS256", **overrides: Any) -> str:
    claims = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "42",
        "client_id": "client",
        "scope": "mcp:read",
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
        "jti": "j1",
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid, "typ": "at+jwt"})


def verifier(still_active: Any = None, keys: Any = None) -> JwtVerifier:
    return JwtVerifier(
        keys or LocalKeys(lambda: {"k1": KEY.public_key()}),
        issuer=ISSUER,
        audience=RESOURCE,
        algorithms=("RS256", "ES256"),
        still_active=still_active,
    )


async def test_a_good_token_names_its_principal_and_scopes() -> None:
    principal = await verifier().verify(token(scope="mcp:read mcp:write"))
    assert principal.key == f"{ISSUER} 42"
    assert principal.scopes == {"mcp:read", "mcp:write"}
    assert principal.client_id == "client"


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        (lambda: token(exp=int(time.time()) - 60), "expired"),
        (lambda: token(aud="https://other.test/mcp"), "not issued for this resource"),
        (lambda: token(aud=None), "invalid"),
        (lambda: token(iss="https://evil.test"), "issuer this resource does not trust"),
        (lambda: token(sub=None), "invalid"),
        (lambda: token(key=OTHER_KEY), "invalid"),
        (lambda: token(kid="unknown"), "key this server does not know"),
        (lambda: _unsigned(), "none"),
        (lambda: _hs256_with_public_key(), "HS256"),
        (lambda: "not.a.jwt", "not a JWT"),
    ],
    ids=[
        "expired",
        "other-resource",
        "no-audience",
        "wrong-issuer",
        "no-subject",
        "bad-signature",
        "unknown-key",
        "alg-none",
        "hs256-confusion",
        "garbage",
    ],
)
async def test_hostile_tokens_are_refused(hostile: Any, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        await verifier().verify(hostile())


def _hs256_with_public_key() -> str:
    # The classic confusion: the public key used as an HMAC secret (built by
    # hand: PyJWT itself refuses to sign that way).
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "at+jwt", "kid": "k1"})
    claims = _b64({"iss": ISSUER, "aud": RESOURCE, "sub": "42", "exp": int(time.time()) + 60})
    signature = hmac.new(public_pem, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _unsigned() -> str:
    return unsigned({"iss": ISSUER, "aud": RESOURCE, "sub": "42", "exp": 2**31})


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


async def test_a_revoked_token_is_refused() -> None:
    async def revoked(token: str) -> bool:
        return False

    with pytest.raises(InvalidToken, match="revoked"):
        await verifier(still_active=revoked).verify(token())


def settings(**overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "mode": AuthMode.JWT,
        "resource": RESOURCE,
        "issuer": ISSUER,
        "read_scope": "mcp:read",
        "write_scope": "mcp:write",
        "algorithms": ("RS256",),
        "leeway": 0.0,
        "jwks_url": "",
        "jwks_cache_seconds": 3600.0,
        "introspection_url": "",
        "client_id": "",
        "client_secret": "",
        "cache_seconds": 30.0,
        "cache_entries": 100,
        "graphql_public_queries": False,
        **overrides,
    }
    return AuthSettings(**values)


class CountingVerifier:
    """A real JwtVerifier whose revocation answer the test flips, counting the checks."""

    def __init__(self) -> None:
        self.active = True
        self.checks = 0
        self.inner = verifier(still_active=self.still_active)

    async def still_active(self, token: str) -> bool:
        self.checks += 1
        return self.active

    async def verify(self, token: str) -> Principal:
        return await self.inner.verify(token)


async def test_a_verified_token_is_trusted_for_the_cache_period_then_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = CountingVerifier()
    server = ResourceServer(settings(cache_seconds=30.0), counting)
    bearer = f"Bearer {token()}"
    now = time.time()
    monkeypatch.setattr("sessions_app.auth.resource.time.time", lambda: now)
    for _ in range(5):
        await server.authenticate(bearer)
    assert counting.checks == 1
    counting.active = False
    # Revoked, but within the documented bound the cached verdict stands.
    monkeypatch.setattr("sessions_app.auth.resource.time.time", lambda: now + 29)
    await server.authenticate(bearer)
    monkeypatch.setattr("sessions_app.auth.resource.time.time", lambda: now + 31)
    with pytest.raises(AuthFailure) as refused:
        await server.authenticate(bearer)
    assert refused.value.status == 401
    assert counting.checks == 2


async def test_a_cached_token_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    server = ResourceServer(settings(cache_seconds=3600.0), verifier())
    now = time.time()
    bearer = f"Bearer {token(exp=int(now) + 10)}"
    await server.authenticate(bearer)
    monkeypatch.setattr("sessions_app.auth.resource.time.time", lambda: now + 11)
    with pytest.raises(AuthFailure, match="expired"):
        await server.authenticate(bearer)


async def test_the_cache_is_bounded() -> None:
    server = ResourceServer(settings(cache_entries=10), verifier())
    for number in range(50):
        await server.authenticate(f"Bearer {token(jti=str(number))}")
    assert len(server._verified) <= 10


@pytest.mark.parametrize(
    ("authorization", "error"),
    [(None, ""), ("", ""), ("Basic dXNlcjpwYXNz", "invalid_request"), ("Bearer " + "a" * 5000, "invalid_token")],
)
async def test_refusals_carry_the_challenge_a_client_needs(authorization: str | None, error: str) -> None:
    server = ResourceServer(settings(), verifier())
    with pytest.raises(AuthFailure) as refused:
        await server.authenticate(authorization)
    assert refused.value.status == 401
    challenge = server.www_authenticate(refused.value)
    assert challenge.startswith("Bearer ")
    assert 'resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"' in challenge
    assert 'scope="mcp:read"' in challenge
    assert (f'error="{error}"' in challenge) == bool(error)


async def test_a_narrow_token_is_told_which_scope_to_step_up_to() -> None:
    server = ResourceServer(settings(), verifier())
    principal = await server.authenticate(f"Bearer {token(scope='mcp:read')}")
    server.require_scope(principal, "mcp:read")
    with pytest.raises(AuthFailure) as refused:
        server.require_scope(principal, "mcp:write")
    assert refused.value.status == 403
    challenge = server.www_authenticate(refused.value)
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="mcp:read mcp:write"' in challenge


# --- an external issuer's keys: discovery, caching, rotation -------------------------


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    served = Issuer()
    yield served
    served.stop()


def remote_verifier(issuer: Issuer) -> JwtVerifier:
    return JwtVerifier(RemoteKeys(issuer.url), issuer=issuer.url, audience=RESOURCE, algorithms=("RS256",))


async def test_keys_are_discovered_from_the_issuer_and_kept(issuer: Issuer) -> None:
    checker = remote_verifier(issuer)
    for _ in range(3):
        principal = await checker.verify(token(iss=issuer.url))
    assert principal.issuer == issuer.url
    assert issuer.jwks_fetches == 1


async def test_a_rotated_key_is_fetched_but_made_up_key_ids_cost_one_fetch_per_interval(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = remote_verifier(issuer)
    await checker.verify(token(iss=issuer.url))
    # Made-up key ids within the refetch interval: no fetch each.
    for number in range(5):
        with pytest.raises(InvalidToken, match="does not publish"):
            await checker.verify(token(iss=issuer.url, kid=f"made-up-{number}"))
    assert issuer.jwks_fetches == 1
    # The issuer rotates to a new key; once the interval has passed, its first token fetches it.
    issuer.keys["k2"] = OTHER_KEY
    monkeypatch.setattr(jwt_verifier, "REFETCH_INTERVAL", 0.0)
    principal = await checker.verify(token(key=OTHER_KEY, kid="k2", iss=issuer.url))
    assert principal.subject == "42"
    assert issuer.jwks_fetches == 2


async def test_an_unreachable_issuer_refuses_tokens_instead_of_failing() -> None:
    checker = JwtVerifier(
        RemoteKeys("http://127.0.0.1:9"), issuer="http://127.0.0.1:9", audience=RESOURCE, algorithms=("RS256",)
    )
    with pytest.raises(InvalidToken, match="unavailable"):
        await checker.verify(token(iss="http://127.0.0.1:9"))
