"""Who may register a client dynamically (RFC 7591): anyone, with safe redirect URIs.

MCP clients register themselves before any user is known, so registration is
anonymous. What keeps it harmless: a new client gets nothing without a user's
consent, and its redirect URIs must be https or an http loopback callback
(RFC 8252), so codes are never sent in clear over the network.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest

from oauth_app.validators import GRANT_TYPES


def is_safe_redirect_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def refusal(metadata: dict[str, Any]) -> tuple[str, str] | None:
    """The RFC 7591 (error, description) for metadata we will not register, else None.

    Shapes DOT checks itself (a list of strings...) are left to it.
    """
    uris = metadata.get("redirect_uris")
    if isinstance(uris, list):
        unsafe = [uri for uri in uris if isinstance(uri, str) and not is_safe_redirect_uri(uri)]
        if unsafe:
            return "invalid_redirect_uri", f"redirect URIs must be https or http on a loopback address: {unsafe[0]}"
    grant_types = metadata.get("grant_types")
    if isinstance(grant_types, list):
        other = [grant for grant in grant_types if grant not in GRANT_TYPES]
        if other:
            return "invalid_client_metadata", f"only authorization_code and refresh_token are served, not {other[0]}"
    return None


class SafeRedirectURIs:
    """DOT permission class: allow when the body's redirect_uris are all safe.

    A body that is not a JSON object with a list of strings is let through: DOT
    then answers the precise `invalid_client_metadata` error.
    """

    def has_permission(self, request: HttpRequest) -> bool:
        try:
            metadata = json.loads(request.body)
        except ValueError:
            return True
        uris = metadata.get("redirect_uris") if isinstance(metadata, dict) else None
        if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
            return True
        return all(is_safe_redirect_uri(uri) for uri in uris)
