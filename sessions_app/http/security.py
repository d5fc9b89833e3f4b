"""What Django's SecurityMiddleware does for its pages, done for /mcp (which Django's middleware never sees).

The same settings, read the same way: the plain-HTTP redirect
(SECURE_SSL_REDIRECT, SECURE_SSL_HOST, SECURE_REDIRECT_EXEMPT), HSTS on
secure answers (SECURE_HSTS_*), X-Content-Type-Options (SECURE_CONTENT_TYPE_NOSNIFF),
Referrer-Policy (SECURE_REFERRER_POLICY) and Cross-Origin-Opener-Policy
(SECURE_CROSS_ORIGIN_OPENER_POLICY). Whether a request is secure follows
Django's `HttpRequest.is_secure`: SECURE_PROXY_SSL_HEADER when the proxy sent
it, else the connection's own scheme.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from sessions_app.http import wire


@dataclass(frozen=True)
class SecurityPolicy:
    ssl_redirect: bool
    ssl_host: str
    redirect_exempt: tuple[re.Pattern[str], ...]
    # (header name lower-cased, the value that means https), or None.
    proxy_ssl_header: tuple[str, str] | None
    # Header lines every answer gets, and those only secure answers get (HSTS).
    always: wire.Headers
    secure_only: wire.Headers

    def is_secure(self, scheme: str, headers: dict[str, str]) -> bool:
        if self.proxy_ssl_header is not None:
            name, secure_value = self.proxy_ssl_header
            value = headers.get(name)
            if value is not None:
                return value.split(",", 1)[0].strip() == secure_value
        return scheme == "https"

    def redirect_to(self, path: str, query_string: str, host: str, *, secure: bool) -> str | None:
        """Where a plain-HTTP request must go instead (Django's Location), or None."""
        if not self.ssl_redirect or secure or any(pattern.search(path.lstrip("/")) for pattern in self.redirect_exempt):
            return None
        query = f"?{query_string}" if query_string else ""
        return f"https://{self.ssl_host or host}{path}{query}"

    def headers_for(self, present: wire.Headers, *, secure: bool) -> wire.Headers:
        """The header lines to add to an answer that already has `present` (none is set twice)."""
        names = {name.lower() for name, _ in present}
        lines = self.always + self.secure_only if secure else self.always
        return [(name, value) for name, value in lines if name not in names]


@functools.cache
def security_policy() -> SecurityPolicy:
    always: wire.Headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        always.append((b"x-content-type-options", b"nosniff"))
    referrer = settings.SECURE_REFERRER_POLICY
    if referrer:
        values = [value.strip() for value in referrer.split(",")] if isinstance(referrer, str) else list(referrer)
        always.append((b"referrer-policy", ",".join(values).encode("latin-1")))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        always.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode("latin-1")))
    secure_only: wire.Headers = []
    if settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        secure_only.append((b"strict-transport-security", hsts.encode()))
    proxy_header = None
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        # Django names it as a META key (HTTP_X_FORWARDED_PROTO): back to the header's name.
        proxy_header = (meta_name.removeprefix("HTTP_").replace("_", "-").lower(), secure_value)
    return SecurityPolicy(
        ssl_redirect=settings.SECURE_SSL_REDIRECT,
        ssl_host=settings.SECURE_SSL_HOST or "",
        redirect_exempt=tuple(re.compile(pattern) for pattern in settings.SECURE_REDIRECT_EXEMPT),
        proxy_ssl_header=proxy_header,
        always=always,
        secure_only=secure_only,
    )


@receiver(setting_changed)
def _forget_policy(*, setting: str, **kwargs: object) -> None:
    if setting.startswith("SECURE_"):
        security_policy.cache_clear()
