"""oauthlib's server with our checks on authorization requests, run before the consent page."""

from __future__ import annotations

from typing import Any

from oauthlib.common import Request
from oauthlib.oauth2 import Server as OAuthlibServer
from oauthlib.oauth2.rfc6749.errors import UnsupportedCodeChallengeMethodError

from oauth_app import resources


def check_authorization_request(request: Request) -> dict[str, Any]:
    """S256 only, and a resource of ours: refused before the user is asked, not after.

    DOT refuses PKCE plain only when it stores the grant, after consent; oauthlib
    defaults a missing method to plain, so this also refuses that.
    """
    if request.code_challenge_method != "S256":
        raise UnsupportedCodeChallengeMethodError(description="code_challenge_method must be S256", request=request)
    resources.check_allowed(request, resources.requested(request))
    return {}


class Server(OAuthlibServer):  # type: ignore[misc]
    def __init__(self, request_validator: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(request_validator, *args, **kwargs)
        self.auth_grant.custom_validators.post_auth.append(check_authorization_request)
