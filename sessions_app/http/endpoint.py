"""Where every request to /mcp enters: from a client's socket (the consumer) or relayed from another node.

`serve` runs the checks every request passes, picks the protocol era
(eras.py) and hands the request to it. Every refusal is a `TransportError`,
answered here and nowhere else (writer.send_error).
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.types import INTERNAL_ERROR

from sessions_app.conf import McpSettings, mcp_settings
from sessions_app.http import log_context, wire
from sessions_app.http.authorization import authenticate, authorize
from sessions_app.http.eras import Era, era_of
from sessions_app.http.exceptions import MethodNotAllowed, TransportError
from sessions_app.http.handshake import serve_handshake
from sessions_app.http.request import McpRequest, parse_message_object, require_post_headers, require_trusted_caller
from sessions_app.http.security import security_policy
from sessions_app.http.stateless import serve_stateless
from sessions_app.http.writer import ResponseWriter, send_error, send_json
from sessions_app.session.manager import session_manager

logger = logging.getLogger(__name__)

ALLOWED_METHODS = "GET, POST, DELETE"


async def serve(writer: ResponseWriter, request: McpRequest, body: bytes) -> None:
    """Answer one request to /mcp whose whole body has been read (and found within MCP_MAX_BODY_BYTES)."""
    settings = mcp_settings()
    if request.relayed:
        # Counted so that a node handing its sessions off answers these first.
        manager = session_manager()
        manager.relayed_in += 1
        try:
            await _serve(writer, request, body, settings)
        finally:
            manager.relayed_in -= 1
    else:
        await _serve(writer, request, body, settings)


async def _redirected_to_https(writer: ResponseWriter, request: McpRequest) -> bool:
    """SECURE_SSL_REDIRECT, as Django does it: a 301 to the https URL. Only after the Host check,
    so that the redirect never names a host this endpoint does not answer to."""
    policy = security_policy()
    secure = policy.is_secure(request.scheme, request.headers)
    location = policy.redirect_to("/mcp", request.query_string, request.headers.get("host", ""), secure=secure)
    if location is None:
        return False
    await send_json(writer, 301, b"", {"Location": location})
    return True


async def _serve(writer: ResponseWriter, request: McpRequest, body: bytes, settings: McpSettings) -> None:
    with log_context.request_scope():
        try:
            require_trusted_caller(request, settings)
            if not request.relayed and await _redirected_to_https(writer, request):
                return
            if request.method not in ("GET", "POST", "DELETE"):
                raise MethodNotAllowed("Method Not Allowed", headers={"Allow": ALLOWED_METHODS})
            # A relayed request is checked again at its owner: the owner trusts no other node's word.
            request, principal = await authenticate(request)
            message: dict[str, Any] | None = None
            if request.method == "POST":
                require_post_headers(request, json_only=settings.json_response)
                message = parse_message_object(body)
            await authorize(principal, message)
            era = era_of(request.method, request.headers, message)
            log_context.describe(era, request.session_id, message)
            if era is Era.STATELESS:
                assert message is not None
                await serve_stateless(writer, request, message, settings)
            else:
                await serve_handshake(writer, request, message, body, settings)
        except TransportError as error:
            if writer.started:
                logger.warning("Refusal after the answer started (%s /mcp): %s", request.method, error.message)
            else:
                await send_error(writer, error)
        except Exception:
            logger.exception("Unexpected error serving %s /mcp", request.method)
            if not writer.started:
                body = wire.dump_message(wire.error_message(INTERNAL_ERROR, "Internal server error"))
                await send_json(writer, 500, body)
