"""Every way a request to /mcp can be refused, one class each.

Each carries the HTTP status and the JSON-RPC error code of its answer; the
consumer turns any of them into a response in one place (`wire.error_response`).
"""

from __future__ import annotations

from mcp.types import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR


class TransportError(Exception):
    """A request the transport refuses, with the status and body to answer it with."""

    status = 400
    code = INVALID_REQUEST

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(TransportError):
    """The request is malformed in a way the client must fix (400)."""


class ParseError(BadRequest):
    """The body is not valid JSON (400, JSON-RPC parse error)."""

    code = PARSE_ERROR


class ForbiddenOrigin(TransportError):
    """The Origin header names a site that may not call this endpoint (403)."""

    status = 403


class SessionNotFound(TransportError):
    """The session id names no session this node serves; the client must re-initialize (404)."""

    status = 404


class AuthorizationFailed(TransportError):
    """No valid bearer token (401), or one without the scope the request needs (403); with the challenge."""

    def __init__(self, message: str, *, status: int, challenge: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": challenge})
        self.status = status


class MethodNotAllowed(TransportError):
    """The HTTP method is not one /mcp serves (405, with Allow)."""

    status = 405


class NotAcceptable(TransportError):
    """The Accept header rules out every representation we can send (406)."""

    status = 406


class StreamConflict(TransportError):
    """The session already has the stream this request asks to open (409)."""

    status = 409


class BodyTooLarge(TransportError):
    """The body exceeds MCP_MAX_BODY_BYTES (413)."""

    status = 413

    @classmethod
    def over(cls, limit: int) -> BodyTooLarge:
        return cls(f"Payload Too Large: the limit is {limit} bytes")


class UnsupportedMediaType(TransportError):
    """The body is not declared as application/json (415)."""

    status = 415


class MisdirectedHost(TransportError):
    """The Host header names a host this endpoint does not answer to (421)."""

    status = 421


class TooManyRequests(TransportError):
    """The session already has MCP_MAX_REQUESTS_PER_SESSION requests in flight (429)."""

    status = 429


class NodeFull(TransportError):
    """This process holds MCP_MAX_SESSIONS sessions; try again later (503)."""

    status = 503
    code = INTERNAL_ERROR


class LostInFlight(TransportError):
    """The node holding the session stopped while serving this relayed request (502): it may or may not have run."""

    status = 502
    code = INTERNAL_ERROR
