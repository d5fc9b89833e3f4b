"""This server as an OAuth 2.1 resource server: bearer token in, principal (or a refusal) out.

`/mcp` and `/graphql` both ask `resource_server().authenticate(...)`. Verified
tokens are kept in a bounded per-process table until they expire or
MCP_AUTH_CACHE_SECONDS pass, whichever comes first, so the common request
costs a dictionary lookup and no round trip; that period is also the bound on
how late a revocation is noticed. Refusals carry the `WWW-Authenticate`
challenge a client needs to find the authorization server (RFC 9728) or to ask
for a wider scope.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.dispatch import receiver

from sessions_app.auth.conf import AuthMode, AuthSettings, auth_settings
from sessions_app.auth.introspection import IntrospectionVerifier
from sessions_app.auth.jwt_verifier import JwtVerifier, LocalKeys, RemoteKeys
from sessions_app.auth.principal import InvalidToken, Principal, TokenVerifier

# Longer Authorization values are refused before any work: they cannot be ours,
# and the cache must not hold arbitrarily large keys.
MAX_TOKEN_LENGTH = 4096


class AuthFailure(Exception):
    """A request the resource server refuses: 401 (no or bad token) or 403 (scope too narrow)."""

    def __init__(self, status: int, description: str, *, error: str = "", scope: str = "") -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.error = error
        self.scope = scope

    def challenge(self, metadata_url: str) -> str:
        """The WWW-Authenticate value (RFC 6750 section 3, RFC 9728 section 5.1)."""
        params = [f'resource_metadata="{metadata_url}"']
        if self.scope:
            params.append(f'scope="{self.scope}"')
        if self.error:
            params.append(f'error="{self.error}"')
            params.append(f'error_description="{_quotable(self.description)}"')
        return "Bearer " + ", ".join(params)


def _quotable(text: str) -> str:
    return "".join(char for char in text if char not in '"\\' and 0x20 <= ord(char) < 0x7F)


class ResourceServer:
    def __init__(self, settings: AuthSettings, verifier: TokenVerifier | None) -> None:
        self.settings = settings
        self.verifier = verifier
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._verifying: dict[str, asyncio.Future[Principal]] = {}

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    def www_authenticate(self, failure: AuthFailure) -> str:
        return failure.challenge(self.settings.metadata_url)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of `Authorization: Bearer <token>`; raises AuthFailure (401)."""
        return await self._principal(bearer_token(authorization, self.settings.read_scope))

    def require_scope(self, principal: Principal, scope: str) -> None:
        """Raises AuthFailure (403) naming what to ask for, if `principal`'s token lacks `scope`."""
        if scope not in principal.scopes:
            wanted = " ".join(dict.fromkeys((*sorted(principal.scopes), self.settings.read_scope, scope)))
            raise AuthFailure(403, f"this request needs the {scope} scope", error="insufficient_scope", scope=wanted)

    def metadata(self) -> dict[str, Any]:
        """The RFC 9728 Protected Resource Metadata document."""
        return {
            "resource": self.settings.resource,
            "authorization_servers": [self.settings.issuer],
            "scopes_supported": [self.settings.read_scope, self.settings.write_scope],
            "bearer_methods_supported": ["header"],
            "resource_name": "MCP decision log",
        }

    async def _principal(self, token: str) -> Principal:
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        # One verification per token at a time: a burst of requests with a new
        # token costs one introspection call, not one each.
        pending = self._verifying.get(token)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._verifying[token] = future
        try:
            principal = await self._verify(token)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._verifying[token]
        future.set_result(principal)
        self._remember(token, principal, now)
        return principal

    async def _verify(self, token: str) -> Principal:
        assert self.verifier is not None
        try:
            principal = await self.verifier.verify(token)
        except InvalidToken as exc:
            raise AuthFailure(401, str(exc), error="invalid_token", scope=self.settings.read_scope) from None
        if principal.expires_at <= time.time():
            raise AuthFailure(401, "the token has expired", error="invalid_token", scope=self.settings.read_scope)
        return principal

    def _remember(self, token: str, principal: Principal, now: float) -> None:
        if len(self._verified) >= self.settings.cache_entries:
            # Oldest first (insertion order): enough to bound memory; a busy token is simply verified again.
            for stale in list(self._verified)[: max(1, len(self._verified) // 8)]:
                del self._verified[stale]
        self._verified[token] = (principal, min(principal.expires_at, now + self.settings.cache_seconds))


def bearer_token(authorization: str | None, read_scope: str) -> str:
    if not authorization:
        raise AuthFailure(401, "this resource needs a bearer token", scope=read_scope)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthFailure(401, "use the Bearer scheme", error="invalid_request", scope=read_scope)
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthFailure(401, "the token is too long", error="invalid_token", scope=read_scope)
    return token


def _verifier(settings: AuthSettings) -> TokenVerifier | None:
    if settings.mode is AuthMode.OFF:
        return None
    if settings.mode is AuthMode.INTROSPECTION:
        return IntrospectionVerifier(
            settings.introspection_url,
            issuer=settings.issuer,
            audience=settings.resource,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
        )
    if settings.mode is AuthMode.EMBEDDED:
        from oauth_app import keys, tokens  # only where the embedded server is installed

        source: LocalKeys | RemoteKeys = LocalKeys(keys.verification_keys)
        still_active = sync_to_async(tokens.is_active)
    else:
        source = RemoteKeys(settings.issuer, settings.jwks_url, settings.jwks_cache_seconds)
        still_active = None
    return JwtVerifier(
        source,
        issuer=settings.issuer,
        audience=settings.resource,
        algorithms=settings.algorithms,
        leeway=settings.leeway,
        still_active=still_active,
    )


@functools.cache
def resource_server() -> ResourceServer:
    settings = auth_settings()
    return ResourceServer(settings, _verifier(settings))


@receiver(setting_changed)
def _forget_server(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(("MCP_AUTH", "MCP_RESOURCE_URI", "OAUTH_", "GRAPHQL_")):
        resource_server.cache_clear()
