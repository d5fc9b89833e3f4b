"""DOT's request validator, narrowed to the flows we serve and to our resources."""

from __future__ import annotations

from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request

from oauth_app import resources

# The grants tokens may come from: each token then has a user for `sub`.
GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


class Validator(OAuth2Validator):  # type: ignore[misc]
    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return grant_type in GRANT_TYPES and bool(
            super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)
        )

    # The audience is settled while the token request is validated, because the
    # access token (a JWT carrying `aud`) is made before DOT stores anything.
    # DOT's own resource checks (a token may not widen its grant) run at storage.

    def validate_code(
        self, client_id: str, code: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        grant = self._load_grant(code, client)
        _settle_audience(request, list(grant.resource or []) if grant else [])
        return True

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        instance = getattr(request, "refresh_token_instance", None)
        _settle_audience(request, list(instance.resource or []) if instance else [])
        return True

    def _load_grant(self, code: str, client: Any) -> Any:
        from oauth2_provider.models import get_grant_model

        return get_grant_model().objects.filter(code=code, application=client).first()


def _settle_audience(request: Request, granted: list[str]) -> None:
    """request.resource := what the client asked now, else what was granted, else MCP_RESOURCE_URI."""
    audience = resources.requested(request) or granted or [resources.default_resource()]
    resources.check_allowed(request, audience)
    request.resource = audience
