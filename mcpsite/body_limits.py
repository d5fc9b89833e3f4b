"""How large a request body may be, by path, and the 413 that refuses one: what mcpsite/http_server.py enforces.

/mcp takes MCP_MAX_BODY_BYTES and is refused with the same JSON-RPC error
body as every other /mcp refusal (sessions_app/http/wire.py); every other
path (GraphQL, the admin, OAuth) takes Django's DATA_UPLOAD_MAX_MEMORY_SIZE
(set from DJANGO_MAX_BODY_BYTES) and is refused with a plain-text 413.

Django's own check on DATA_UPLOAD_MAX_MEMORY_SIZE runs only once daphne has
read the whole body, and leaves file parts of a multipart body out; the edge
counts every byte of the body. Nothing here takes file uploads (GraphQL has
multipart off), so a body Django would refuse anyway is not worth reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings

from sessions_app.conf import mcp_settings
from sessions_app.http import wire
from sessions_app.http.exceptions import BodyTooLarge

MCP_PATH = "/mcp"


@dataclass(frozen=True)
class BodyLimits:
    mcp: int
    # None: no limit (Django's own meaning of DATA_UPLOAD_MAX_MEMORY_SIZE = None).
    other: int | None

    @classmethod
    def from_settings(cls) -> BodyLimits:
        return cls(mcp=mcp_settings().max_body_bytes, other=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)

    def for_target(self, target: bytes) -> int | None:
        """The limit for a request line's target (`/mcp?x=1`)."""
        return self.mcp if _is_mcp(target) else self.other

    def refusal(self, target: bytes) -> bytes:
        """The whole HTTP/1.1 answer refusing a body over the limit for `target`; the connection closes after it."""
        limit = self.for_target(target)
        assert limit is not None
        error = BodyTooLarge.over(limit)
        if _is_mcp(target):
            content_type, body = wire.JSON_CONTENT_TYPE.encode(), wire.error_body(error)
        else:
            content_type, body = b"text/plain; charset=utf-8", error.message.encode() + b"\n"
        head = (
            b"HTTP/1.1 413 Payload Too Large\r\n"
            b"Content-Type: " + content_type + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"X-Content-Type-Options: nosniff\r\n"
            b"Connection: close\r\n\r\n"
        )
        return head + body


def _is_mcp(target: bytes) -> bool:
    """Whether the request goes to the MCP consumer: its path decoded as daphne decodes it for the scope."""
    return unquote(target.split(b"?", 1)[0].decode("ascii", "replace")) == MCP_PATH
