"""What goes on the wire: header names, JSON-RPC bodies and SSE frames.

One helper builds every error body, so every refusal looks the same.
"""

from __future__ import annotations

from typing import Any, Final

from mcp.types import ErrorData, JSONRPCError, JSONRPCMessage

from sessions_app.http.exceptions import TransportError

SESSION_ID_HEADER: Final = "mcp-session-id"
PROTOCOL_VERSION_HEADER: Final = "mcp-protocol-version"
LAST_EVENT_ID_HEADER: Final = "last-event-id"

JSON_CONTENT_TYPE: Final = "application/json"
SSE_CONTENT_TYPE: Final = "text/event-stream"

Headers = list[tuple[bytes, bytes]]

SSE_HEADERS: Final[Headers] = [
    (b"content-type", SSE_CONTENT_TYPE.encode()),
    (b"cache-control", b"no-cache, no-transform"),
    # Tell nginx-style proxies not to buffer the stream (2026-07-28 SHOULD).
    (b"x-accel-buffering", b"no"),
]
JSON_HEADERS: Final[Headers] = [(b"content-type", JSON_CONTENT_TYPE.encode())]

KEEPALIVE_FRAME: Final = b": keepalive\n\n"


def dump_message(message: JSONRPCMessage | JSONRPCError) -> bytes:
    """One JSON-RPC message as compact UTF-8 JSON.

    Written by pydantic's own serializer straight to bytes: a fifth of the CPU
    of dumping to a dict and encoding that with the json module.
    """
    if isinstance(message, JSONRPCError) and "id" not in message.model_fields_set:
        # JSON-RPC wants `"id": null` on an error for a request whose id is unknown.
        message = message.model_copy(update={"id": None})
    return message.__pydantic_serializer__.to_json(message, by_alias=True, exclude_unset=True)


def error_message(code: int, message: str, request_id: Any = None, data: Any = None) -> JSONRPCError:
    error = ErrorData(code=code, message=message) if data is None else ErrorData(code=code, message=message, data=data)
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=error)


def error_body(error: TransportError) -> bytes:
    return dump_message(error_message(error.code, error.message))


def sse_frame(data: bytes, event_id: str | None = None) -> bytes:
    """An SSE `message` event; `data` is one line of JSON (no newlines by construction)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: message\ndata: ".encode() + data + b"\n\n"


def priming_frame(event_id: str, retry_ms: int) -> bytes:
    """The first event of a 2025-11-25 stream: a cursor to resume from and the reconnect delay."""
    return f"id: {event_id}\nretry: {retry_ms}\ndata: \n\n".encode()


def retry_frame(retry_ms: int) -> bytes:
    """Sent before the server ends a stream the client should reopen (shutdown, a handler's request)."""
    return f"retry: {retry_ms}\n\n".encode()


def encode_headers(headers: dict[str, str]) -> Headers:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
