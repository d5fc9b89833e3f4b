"""Who may register a client dynamically (RFC 7591): anyone, with safe redirect URIs.

MCP clients register themselves before any user is known, so registration is
anonymous. What keeps it harmless: a new client gets nothing without a user's
consent, and its redirect URIs must be https or an http loopback callback
(RFC 8252), so codes are never sent in clear over the network.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

from django.http import HttpRequest


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
