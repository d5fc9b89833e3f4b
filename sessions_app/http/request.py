"""The checks every request to /mcp passes before anything else looks at it.

`McpRequest` is the transport's view of one HTTP request; the `require_*`
functions raise a `TransportError` subclass when a check fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sessions_app.conf import McpSettings
from sessions_app.http import wire
from sessions_app.http.exceptions import (
    BadRequest,
    ForbiddenOrigin,
    MisdirectedHost,
    NotAcceptable,
    ParseError,
    UnsupportedMediaType,
)


@dataclass(frozen=True)
class McpRequest:
    method: str
    # Header names lower-cased; a repeated header's values joined with ", ".
    headers: dict[str, str]
    # The header lines as the server passed them (shared with the scope, not
    # copied: an open stream keeps its request alive for as long as it lasts).
    scope_headers: list[tuple[bytes, bytes]] = field(repr=False)
    # Forwarded by another node's relay: served here or refused, never relayed again.
    relayed: bool = False
    # Whom the request's token names (auth/principal.py `Principal.key`), once
    # checked; "" with authorization off.
    principal: str = ""
    # The socket's peer address ("" for a relayed request: admission happens where a request comes in).
    peer_address: str = ""
    # The connection's scheme and query string (a relayed request keeps the defaults: it is never redirected).
    scheme: str = "http"
    query_string: str = ""

    @classmethod
    def from_scope(cls, scope: dict[str, Any]) -> McpRequest:
        client = scope.get("client")
        return cls.from_lines(
            scope["method"],
            scope["headers"],
            peer_address=str(client[0]) if client else "",
            scheme=scope.get("scheme", "http"),
            query_string=scope.get("query_string", b"").decode("latin-1"),
        )

    @classmethod
    def from_lines(
        cls,
        method: str,
        lines: list[tuple[bytes, bytes]],
        *,
        relayed: bool = False,
        peer_address: str = "",
        scheme: str = "http",
        query_string: str = "",
    ) -> McpRequest:
        headers: dict[str, str] = {}
        for raw_name, raw_value in lines:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return cls(
            method=method,
            headers=headers,
            scope_headers=lines,
            relayed=relayed,
            peer_address=peer_address,
            scheme=scheme,
            query_string=query_string,
        )

    @property
    def raw_headers(self) -> list[tuple[str, str]]:
        """Every header line in order, repeats kept, names lower-cased."""
        return [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in self.scope_headers]

    @property
    def session_id(self) -> str | None:
        return self.headers.get(wire.SESSION_ID_HEADER)

    def accepts(self, media_type: str) -> bool:
        accepted = {part.split(";")[0].strip().lower() for part in self.headers.get("accept", "").split(",")}
        major = media_type.split("/")[0]
        return bool(accepted & {media_type, f"{major}/*", "*/*"})


def client_of(request: McpRequest, proxy_hops: int) -> str:
    """Whom fair admission (session/admission.py) counts a request against.

    The principal its token names where authorization is on, else the address
    it connects from: the socket's peer or, behind `proxy_hops` trusted
    proxies, the address the outermost of them saw (X-Forwarded-For is read
    from the right, where each proxy appends; entries further left are
    whatever the client chose to send).
    """
    if request.principal:
        return f"principal {request.principal}"
    return f"address {client_address(request, proxy_hops)}"


def client_address(request: McpRequest, proxy_hops: int) -> str:
    if proxy_hops <= 0:
        return request.peer_address
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    if not forwarded:
        return request.peer_address
    # Fewer entries than trusted hops: the leftmost is still one a trusted proxy wrote.
    return forwarded[-proxy_hops] if len(forwarded) >= proxy_hops else forwarded[0]


def require_trusted_caller(request: McpRequest, settings: McpSettings) -> None:
    """Refuse DNS-rebinding and cross-site calls: Host must be ours, Origin (if sent) allowed."""
    host = _hostname(request.headers.get("host", ""))
    if "*" not in settings.allowed_hosts and host not in settings.allowed_hosts:
        raise MisdirectedHost("Host not allowed for this endpoint")
    origin = request.headers.get("origin")
    if origin is not None and not _origin_allowed(origin, settings.allowed_origins):
        raise ForbiddenOrigin("Origin not allowed")


def _hostname(host_header: str) -> str:
    """The host part of a Host header; "" if the header is malformed."""
    host = host_header.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host.partition("]")
        return f"{name}]" if bracket and (not rest or _is_port(rest)) else ""
    name, colon, port = host.partition(":")
    return name if not colon or port.isdigit() else ""


def _is_port(suffix: str) -> bool:
    return suffix.startswith(":") and suffix[1:].isdigit()


def _origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """An allowed entry without a port admits that scheme and host on any port."""
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed or "*" in allowed:
        return True
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        return False
    if not parts.hostname or parts.username is not None or parts.path:
        return False
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" in allowed


def require_session_id_syntax(session_id: str) -> None:
    # Visible ASCII is printable ASCII (0x20-0x7E) less the space: C-level scans, not a Python step per character.
    if not session_id or not (session_id.isascii() and session_id.isprintable()) or " " in session_id:
        raise BadRequest("Bad Request: Mcp-Session-Id must be visible ASCII characters (0x21-0x7E)")


def require_post_headers(request: McpRequest, *, json_only: bool) -> None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != wire.JSON_CONTENT_TYPE:
        raise UnsupportedMediaType("Unsupported Media Type: Content-Type must be application/json")
    wants_sse = not json_only
    if not request.accepts(wire.JSON_CONTENT_TYPE) or (wants_sse and not request.accepts(wire.SSE_CONTENT_TYPE)):
        raise NotAcceptable("Not Acceptable: Accept must include application/json and text/event-stream")


def require_sse_accept(request: McpRequest) -> None:
    if not request.accepts(wire.SSE_CONTENT_TYPE):
        raise NotAcceptable("Not Acceptable: Accept must include text/event-stream")


def parse_message_object(body: bytes) -> dict[str, Any]:
    """The body as one JSON object; batches and bare values are refused."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8 and oversized numbers as well as bad JSON.
        raise ParseError("Parse error: the body is not valid JSON") from None
    if isinstance(decoded, list):
        raise BadRequest("Invalid Request: JSON-RPC batches are not supported; send one message per POST")
    if not isinstance(decoded, dict):
        raise BadRequest("Invalid Request: the body must be one JSON-RPC message object")
    if "id" in decoded and not _is_request_id(decoded["id"]):
        # Checked here because the SDK's message types would read such a
        # message as a notification (and it would get 202, unanswered).
        raise BadRequest("Invalid Request: id must be a string or an integer")
    return decoded


def _is_request_id(value: object) -> bool:
    """MCP ids are strings or integers: never null (unlike JSON-RPC), and not fractions or booleans."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
