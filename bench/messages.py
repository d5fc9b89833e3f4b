"""The MCP requests the benchmark sends, in both protocol eras, rendered as raw bytes.

Every request carries a fresh JSON-RPC id: concurrent requests on one session
must not share one, and the body is the only part that changes per request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .rawhttp import Connection, Response, render_request

HANDSHAKE_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
ACCEPT_BOTH = "application/json, text/event-stream"
ECHO_TEXT = "hello"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
}
# What a correct echo answer contains, in a JSON body or an SSE data line alike.
EXPECTED_IN_ANSWER = b'"result"'

RequestFactory = Callable[[int], bytes]


def _dump(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def _base_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": ACCEPT_BOTH}


def _echo_call(request_id: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": "echo", "arguments": {"text": ECHO_TEXT}}
    if meta is not None:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _with_cookie(headers: dict[str, str], cookie: str) -> dict[str, str]:
    return {**headers, "Cookie": cookie} if cookie else headers


def session_headers(session_id: str, cookie: str = "") -> dict[str, str]:
    headers = {**_base_headers(), "Mcp-Session-Id": session_id, "MCP-Protocol-Version": HANDSHAKE_VERSION}
    return _with_cookie(headers, cookie)


def handshake_call(host: str, session_id: str, cookie: str = "") -> RequestFactory:
    """tools/call on an established handshake-era session (with the proxy's sticky cookie, if any)."""
    headers = session_headers(session_id, cookie)
    return lambda request_id: render_request("POST", "/mcp", host, headers, _dump(_echo_call(request_id)))


def modern_call(host: str) -> RequestFactory:
    """A stateless 2026-07-28 tools/call: `_meta` in the body, Mcp-Method/Mcp-Name headers."""
    headers = {
        **_base_headers(),
        "MCP-Protocol-Version": MODERN_VERSION,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "echo",
    }
    return lambda request_id: render_request("POST", "/mcp", host, headers, _dump(_echo_call(request_id, MODERN_META)))


def initialize_request(host: str, cookie: str = "") -> bytes:
    initialize = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
    return render_request("POST", "/mcp", host, _with_cookie(_base_headers(), cookie), _dump(initialize))


def initialized_request(host: str, session_id: str, cookie: str = "") -> bytes:
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    return render_request("POST", "/mcp", host, session_headers(session_id, cookie), _dump(initialized))


def cookie_after(response: Response, cookie: str = "") -> str:
    """The `name=value` to send back after `response`: its Set-Cookie's if it set one, else `cookie`.

    Behind Traefik that is the sticky `_mcp_backend` cookie. It is `Secure`, so
    real clients keep it over HTTPS only; this client just echoes it.
    """
    set_cookie = response.headers.get(b"set-cookie")
    return set_cookie.split(b";", 1)[0].strip().decode("latin-1") if set_cookie else cookie


async def open_session(connection: Connection, host: str) -> str:
    """initialize + notifications/initialized; returns the Mcp-Session-Id."""
    session_id, _ = await open_sticky_session(connection, host)
    return session_id


async def open_sticky_session(connection: Connection, host: str) -> tuple[str, str]:
    """open_session, sending back any cookie the first answer set; returns (Mcp-Session-Id, cookie)."""
    response = await connection.request(initialize_request(host))
    _require(response, (200,), "initialize")
    session_id = response.headers[b"mcp-session-id"].decode("ascii")
    cookie = cookie_after(response)
    response = await connection.request(initialized_request(host, session_id, cookie))
    _require(response, (202,), "notifications/initialized")
    return session_id, cookie_after(response, cookie)


async def close_session(connection: Connection, host: str, session_id: str) -> None:
    response = await connection.request(render_request("DELETE", "/mcp", host, session_headers(session_id)))
    _require(response, (200, 204), "DELETE")


def _require(response: Response, statuses: tuple[int, ...], what: str) -> None:
    if response.status not in statuses:
        raise RuntimeError(f"{what}: expected HTTP {statuses}, got {response.status}: {response.body[:300]!r}")
