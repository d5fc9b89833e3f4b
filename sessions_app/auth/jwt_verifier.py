"""JWT access tokens (RFC 9068), checked against the issuer's keys: no round trip per token.

`JwtVerifier` checks signature, issuer, audience and expiry with PyJWT. Where
the keys come from is a `KeySource`: `RemoteKeys` discovers an external
issuer's JWKS and keeps it, fetching again on an unknown `kid` (key rotation)
at most once per `REFETCH_INTERVAL`, so tokens with made-up key ids cannot
make us hammer the issuer; `LocalKeys` reads the embedded server's keys.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx2
import jwt

from sessions_app.auth.principal import InvalidToken, Principal

logger = logging.getLogger(__name__)

# Seconds between two JWKS fetches caused by a token whose key id we do not know.
REFETCH_INTERVAL = 30.0
FETCH_TIMEOUT = 5.0
MAX_DOCUMENT_BYTES = 256 * 1024


class KeySource(Protocol):
    async def key(self, kid: str | None) -> Any:
        """The public key `kid` names; raises InvalidToken if there is none."""
        ...


class LocalKeys:
    """Keys this process can read without a request (the embedded server's), by key id."""

    def __init__(self, load: Callable[[], Mapping[str, Any]]) -> None:
        self._load = load
        self._keys: Mapping[str, Any] | None = None

    async def key(self, kid: str | None) -> Any:
        if self._keys is None or kid not in self._keys:
            # A rotated-in key appears on the next load; loading is local and cheap.
            self._keys = self._load()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid is None or kid not in self._keys:
            raise InvalidToken("the token is signed with a key this server does not know")
        return self._keys[kid]


class RemoteKeys:
    """An external issuer's JWKS, discovered from its metadata unless `jwks_url` is given."""

    def __init__(self, issuer: str, jwks_url: str = "", max_age: float = 3600.0) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.max_age = max_age
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> Any:
        if self._needs_fetch(kid):
            async with self._lock:
                if self._needs_fetch(kid):  # unless a request we waited for just fetched them
                    await self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid is None or kid not in self._keys:
            raise InvalidToken("the token is signed with a key the issuer does not publish")
        return self._keys[kid]

    def _needs_fetch(self, kid: str | None) -> bool:
        age = time.monotonic() - self._fetched_at
        return age > self.max_age or (kid not in self._keys and age > REFETCH_INTERVAL)

    async def _refresh(self) -> None:
        try:
            async with httpx2.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
                url = self.jwks_url or await self._discover(client)
                document = await _get_json(client, url)
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (httpx2.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            # Keep the keys we had: an issuer outage must not reject tokens we can still check.
            logger.warning("Cannot fetch the signing keys of %s: %s", self.issuer, exc)
            self._fetched_at = time.monotonic()
            if not self._keys:
                raise InvalidToken("the issuer's signing keys are unavailable") from exc
            return
        self._keys = {key.key_id: key for key in keys if key.key_id and key.public_key_use in (None, "sig")}
        self._fetched_at = time.monotonic()

    async def _discover(self, client: httpx2.AsyncClient) -> str:
        """jwks_uri from RFC 8414 metadata (path inserted after the well-known prefix), else OpenID discovery."""
        parts = urlsplit(self.issuer)
        origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
        candidates = (
            f"{origin}/.well-known/oauth-authorization-server{path}",
            f"{self.issuer}/.well-known/openid-configuration",
        )
        for url in candidates:
            try:
                metadata = await _get_json(client, url)
            except (httpx2.HTTPError, ValueError):
                continue
            if metadata.get("issuer", "").rstrip("/") == self.issuer and isinstance(metadata.get("jwks_uri"), str):
                return str(metadata["jwks_uri"])
        raise ValueError(f"no metadata naming jwks_uri for issuer {self.issuer}")


async def _get_json(client: httpx2.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    document = response.json()
    if not isinstance(document, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return document


class JwtVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...],
        leeway: float = 0.0,
        still_active: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway
        # Revocation: asked after the signature checks out (the embedded server keeps a row per token).
        self.still_active = still_active

    async def verify(self, token: str) -> Principal:
        header = _header_of(token)
        # Checked here as well as by PyJWT: `none` and shared-secret algorithms never reach a key lookup.
        if header.get("alg") not in self.algorithms:
            raise InvalidToken(f"tokens signed with {str(header.get('alg'))[:16]!r} are not accepted")
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token was not issued for this resource") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token comes from an issuer this resource does not trust") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"the token is invalid: {exc}") from None
        if self.still_active is not None and not await self.still_active(token):
            raise InvalidToken("the token has been revoked")
        return principal_from_claims(claims, self.issuer)


def _header_of(token: str) -> dict[str, Any]:
    """The JOSE header, read only to pick the key: PyJWT checks the whole token again.

    Read here rather than with `jwt.get_unverified_header`, which validates
    every character of the token in Python first (a third of a verification).
    """
    encoded, dot, _ = token.partition(".")
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        header = None
    if not dot or not isinstance(header, dict):
        raise InvalidToken("the token is not a JWT")
    return header


def principal_from_claims(claims: Mapping[str, Any], issuer: str) -> Principal:
    """The principal of checked claims (a JWT's, or an introspection answer's)."""
    subject, scope = claims.get("sub"), claims.get("scope", "")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("the token names no subject")
    if not isinstance(scope, str):
        raise InvalidToken("the token's scope is not a string")
    expires_at = claims.get("exp")
    return Principal(
        issuer=issuer,
        subject=subject,
        scopes=frozenset(scope.split()),
        client_id=str(claims.get("client_id", "")),
        expires_at=float(expires_at) if isinstance(expires_at, int | float) else float("inf"),
    )
