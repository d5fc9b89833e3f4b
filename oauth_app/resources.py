"""Which resources (RFC 8707) a token may be issued for, and what a request asked for."""

from __future__ import annotations

from django.conf import settings
from oauthlib.common import Request, urldecode
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error


def default_resource() -> str:
    """The audience of a token whose client named no resource."""
    return str(settings.MCP_RESOURCE_URI)


def is_allowed(uri: str) -> bool:
    # Exact comparison: the audience is a string the resource server compares exactly.
    return uri in settings.OAUTH_RESOURCES


def requested(request: Request) -> list[str]:
    """The `resource` values of an oauthlib request, repeats included (oauthlib keeps the last one only)."""
    value = getattr(request, "resource", None)
    if isinstance(value, list):
        return [str(item) for item in value]
    repeated = [item for key, item in urldecode(request.uri_query or "") if key == "resource"]
    repeated += [item for key, item in (request.decoded_body or []) if key == "resource"]
    if repeated:
        return list(dict.fromkeys(repeated))
    return [value] if isinstance(value, str) and value else []


def check_allowed(request: Request, resources: list[str]) -> None:
    """Raise `invalid_target` unless every one of `resources` is ours."""
    for uri in resources:
        if not is_allowed(uri):
            raise CustomOAuth2Error(
                error="invalid_target",
                description=f"tokens are not issued for the resource {uri!r}",
                request=request,
            )
