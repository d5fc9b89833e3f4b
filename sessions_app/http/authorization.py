"""Every request to /mcp shows a token (auth/resource.py) before anything acts on it.

`authenticate` runs before the body is looked at (no token: 401); `authorize`
checks the scope the parsed message needs (403 with the scope to step up to).
Both turn the resource server's refusal into the transport's one error type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sessions_app import metrics
from sessions_app.auth.principal import Principal
from sessions_app.auth.resource import AuthFailure, resource_server
from sessions_app.auth.scopes import scope_needed
from sessions_app.http.exceptions import AuthorizationFailed
from sessions_app.http.request import McpRequest
from sessions_app.session.hosted_server import hosted_server


async def authenticate(request: McpRequest) -> tuple[McpRequest, Principal | None]:
    """The request with its principal set, and the principal (None with authorization off)."""
    server = resource_server()
    if not server.enabled:
        return request, None
    try:
        principal = await server.authenticate(request.headers.get("authorization"))
    except AuthFailure as failure:
        raise _refusal(failure) from None
    return replace(request, principal=principal.key), principal


async def authorize(principal: Principal | None, message: Mapping[str, Any] | None) -> None:
    if principal is None:
        return
    server = resource_server()
    scope = scope_needed(message, (await hosted_server()).tool_access, server.settings)
    try:
        server.require_scope(principal, scope)
    except AuthFailure as failure:
        raise _refusal(failure) from None


def _refusal(failure: AuthFailure) -> AuthorizationFailed:
    metrics.authorization_failures.labels(failure.error or "missing_token").inc()
    challenge = resource_server().www_authenticate(failure)
    return AuthorizationFailed(failure.description, status=failure.status, challenge=challenge)
