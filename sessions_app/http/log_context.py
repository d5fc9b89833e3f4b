"""What a log record knows about the MCP request it was written for (the JSON log format, settings.LOGGING).

`endpoint._serve` runs inside `request_scope()` and calls `describe` once the
request's era is known. From then on, each record written while serving the
request gets, from the `RequestFields` filter: `era` (handshake or
stateless), `method` (the JSON-RPC method, absent for GET and DELETE),
`session` (routing.session_hash of the Mcp-Session-Id, never the id: it is
a bearer secret) and `trace_id` (from `params._meta.traceparent`, only when
that is valid W3C trace context).

The fields travel with the request's context (contextvars), so they reach
the tasks it starts: the handler of a 2026-07-28 request, and the SDK's
handler of a handshake-era message (session/session.py hands each message to
the session with its sender's context). They end with the request: a task
started while serving one and outliving it (a session's server loop, the
node's heartbeat, both started by the first `initialize`) inherits the
context too, and must not go on logging as that request. So a handshake-era
handler still running after its client dropped the stream logs without them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from sessions_app.cluster.routing import session_hash
from sessions_app.http.eras import Era

# The method is whatever the client sent: a bounded share of it is enough to tell requests apart.
MAX_METHOD_CHARS = 100
ERA_NAMES = {Era.HANDSHAKE: "handshake", Era.STATELESS: "stateless"}
# W3C Trace Context, `traceparent`: version-traceid-parentid-flags, lower-case hex.
# A later version may append fields after another dash; version 00 may not.
TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-[0-9a-f]{2}(?P<rest>-.*)?"
)


class _Scope:
    """One request, for as long as it is being served (nothing before `describe`, and after the end).

    The fields are worked out when a record first asks for them: most requests log nothing.
    """

    __slots__ = ("_fields", "described", "ended")

    def __init__(self) -> None:
        self.described: tuple[Era, str | None, Mapping[str, Any] | None] | None = None
        self.ended = False
        self._fields: dict[str, str] | None = None

    @property
    def fields(self) -> dict[str, str] | None:
        if self.ended or self.described is None:
            return None
        if self._fields is None:
            self._fields = _fields_of(*self.described)
        return self._fields


_scope: ContextVar[_Scope | None] = ContextVar("mcp_log_scope", default=None)


class request_scope:
    """`with request_scope():` around serving one request: `describe` within it names the request until it ends.

    A class, not a decorator or a generator: neither holds a frame of its own
    for as long as the request lasts (an open stream lasts for hours).
    """

    __slots__ = ("_scope", "_token")

    def __enter__(self) -> None:
        self._scope = _Scope()
        self._token = _scope.set(self._scope)

    def __exit__(self, *exc_info: object) -> None:
        # Tasks that copied this context keep the scope object: ending it ends their share too.
        self._scope.ended = True
        _scope.reset(self._token)


def describe(era: Era, session_id: str | None, message: Mapping[str, Any] | None) -> None:
    """Name the request being served (`message`: the decoded POST body, None for GET and DELETE)."""
    scope = _scope.get()
    if scope is None:
        # Outside `request_scope` nothing would ever end the fields.
        return
    scope.described = (era, session_id, message)


def _fields_of(era: Era, session_id: str | None, message: Mapping[str, Any] | None) -> dict[str, str]:
    fields = {"era": ERA_NAMES[era]}
    method = message.get("method") if message is not None else None
    if isinstance(method, str):
        fields["method"] = method[:MAX_METHOD_CHARS]
    if session_id:
        fields["session"] = session_hash(session_id)
    trace_id = trace_id_of(message)
    if trace_id is not None:
        fields["trace_id"] = trace_id
    return fields


def current() -> dict[str, str] | None:
    """The fields of the request being served here, if any."""
    scope = _scope.get()
    return scope.fields if scope is not None else None


def trace_id_of(message: Mapping[str, Any] | None) -> str | None:
    """The trace id of `params._meta.traceparent`, if the client sent valid W3C trace context."""
    params = message.get("params") if message is not None else None
    meta = params.get("_meta") if isinstance(params, Mapping) else None
    traceparent = meta.get("traceparent") if isinstance(meta, Mapping) else None
    if not isinstance(traceparent, str):
        return None
    match = TRACEPARENT.fullmatch(traceparent)
    if match is None or match["version"] == "ff" or (match["version"] == "00" and match["rest"] is not None):
        return None
    # All-zero ids are invalid by the spec's own words.
    if match["trace"] == "0" * 32 or match["parent"] == "0" * 16:
        return None
    return match["trace"]


class RequestFields(logging.Filter):
    """Copy the fields of the request being served onto each record (wired on the JSON handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = current()
        if fields is not None:
            record.__dict__.update(fields)
        return True
