"""The resource server's settings, read from Django settings on first use (like sessions_app.conf)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver


class AuthMode(Enum):
    OFF = "off"
    # Tokens of the embedded authorization server (oauth_app): keys and revocation read locally.
    EMBEDDED = "embedded"
    # JWT access tokens of an external issuer, checked against its published keys.
    JWT = "jwt"
    # Opaque tokens of an external issuer, asked about at its RFC 7662 endpoint.
    INTROSPECTION = "introspection"


@dataclass(frozen=True)
class AuthSettings:
    mode: AuthMode
    # This server's canonical URI: the only audience a token may carry.
    resource: str
    issuer: str
    read_scope: str
    write_scope: str
    algorithms: tuple[str, ...]
    leeway: float
    jwks_url: str
    jwks_cache_seconds: float
    introspection_url: str
    client_id: str
    client_secret: str
    # How long a verified token is trusted without asking again: the bound on
    # how late a revocation takes effect, and on how often a token costs a lookup.
    cache_seconds: float
    cache_entries: int
    graphql_public_queries: bool

    @property
    def enabled(self) -> bool:
        return self.mode is not AuthMode.OFF

    @property
    def metadata_url(self) -> str:
        """Where this resource's RFC 9728 metadata lives: the well-known prefix before the resource's path."""
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path.rstrip('/')}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@functools.cache
def auth_settings() -> AuthSettings:
    try:
        mode = AuthMode(settings.MCP_AUTH)
    except ValueError:
        choices = ", ".join(mode.value for mode in AuthMode)
        raise ImproperlyConfigured(f"MCP_AUTH must be one of {choices}, not {settings.MCP_AUTH!r}") from None
    resource = settings.MCP_RESOURCE_URI
    parts = urlsplit(resource)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"MCP_RESOURCE_URI must be an absolute http(s) URI without query, not {resource!r}")
    issuer = settings.MCP_AUTH_ISSUER or (getattr(settings, "OAUTH_ISSUER", "") if mode is AuthMode.EMBEDDED else "")
    loaded = AuthSettings(
        mode=mode,
        resource=resource,
        issuer=(issuer or _origin(resource)).rstrip("/"),
        read_scope=settings.MCP_AUTH_READ_SCOPE,
        write_scope=settings.MCP_AUTH_WRITE_SCOPE,
        algorithms=tuple(settings.MCP_AUTH_ALGORITHMS),
        leeway=settings.MCP_AUTH_LEEWAY,
        jwks_url=settings.MCP_AUTH_JWKS_URL,
        jwks_cache_seconds=settings.MCP_AUTH_JWKS_CACHE_SECONDS,
        introspection_url=settings.MCP_AUTH_INTROSPECTION_URL,
        client_id=settings.MCP_AUTH_CLIENT_ID,
        client_secret=settings.MCP_AUTH_CLIENT_SECRET,
        cache_seconds=settings.MCP_AUTH_CACHE_SECONDS,
        cache_entries=settings.MCP_AUTH_CACHE_ENTRIES,
        graphql_public_queries=settings.GRAPHQL_PUBLIC_QUERIES,
    )
    if mode in (AuthMode.JWT, AuthMode.INTROSPECTION) and not settings.MCP_AUTH_ISSUER:
        raise ImproperlyConfigured(f"MCP_AUTH={mode.value} needs MCP_AUTH_ISSUER, the issuer tokens must come from")
    if mode is AuthMode.INTROSPECTION and not (loaded.introspection_url and loaded.client_id):
        raise ImproperlyConfigured("MCP_AUTH=introspection needs MCP_AUTH_INTROSPECTION_URL and MCP_AUTH_CLIENT_ID")
    if {"none", "HS256", "HS384", "HS512"} & set(loaded.algorithms) or not loaded.algorithms:
        # A shared-secret algorithm would let anyone holding the public key sign tokens.
        raise ImproperlyConfigured("MCP_AUTH_ALGORITHMS must list asymmetric algorithms only (e.g. RS256, ES256)")
    if loaded.cache_seconds < 0 or loaded.cache_entries <= 0:
        raise ImproperlyConfigured("MCP_AUTH_CACHE_SECONDS must be >= 0 and MCP_AUTH_CACHE_ENTRIES > 0")
    return loaded


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(("MCP_AUTH", "MCP_RESOURCE_URI", "OAUTH_", "GRAPHQL_")):
        auth_settings.cache_clear()
