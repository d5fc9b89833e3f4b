"""Adoption: continuing on this node a session whose owner is gone.

What a session needs in order to continue elsewhere is in its registry
record (registry/base.py): the negotiated protocol version, the client's
info and capabilities, its log level and its resource subscriptions. The
SDK's server loop of the adopted session is brought to where the old one
was by the same messages the client once sent, replayed here: `initialize`
(its answer dropped), `notifications/initialized`, `logging/setLevel` and
one `resources/subscribe` per subscription. The hosted server thus rebuilds
whatever it keeps per session through its own handlers.

That is correct only for a server whose per-session state is exactly what
the record carries, so a server opts in: its module says `ADOPTABLE = True`,
or the MCP_SERVER_ADOPTABLE setting does.

The streams and tasks of the old session are gone: the client reconnects
its standalone stream (its old Last-Event-ID is accepted: the adopted
session's event ids sort after every id of the old one), and a request that
was in flight at the crash is lost. When that stream attaches, the session
reports every subscribed resource as updated, and the resource list as
changed if the server announces list changes, so that nothing changed
while no node held the session goes unnoticed (and a client that re-lists
is watching the list again).
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from sessions_app.cluster.registry import SessionRecord
from sessions_app.cluster.routing import short_id
from sessions_app.session.session import McpSession, RequestInfo

logger = logging.getLogger(__name__)

# Ids of the replayed requests: distinct from each other, and finished before
# any request of the client reaches the adopted session.
REPLAY_ID_PREFIX = "mcp-adoption-"


class AdoptionFailed(Exception):
    """The hosted server would not take the session back (its initialize was refused)."""


async def restore(session: McpSession, record: SessionRecord) -> None:
    """Bring `session`'s server loop to the state `record` describes. Raises AdoptionFailed."""
    client_info = record.client_info or {"name": record.client_name, "version": record.client_version}
    initialize = {
        "protocolVersion": record.protocol_version,
        "capabilities": record.client_capabilities,
        "clientInfo": client_info,
    }
    session.accept_initialize(initialize)
    session.adoptable = record.adoptable
    # The hosted server finds a request's session by this header (ctx.request.headers).
    info = RequestInfo({"mcp-session-id": session.id})
    initialized = await _replay(session, info, 1, "initialize", initialize)
    if not isinstance(initialized, JSONRPCResponse):
        raise AdoptionFailed(initialized.error.message if isinstance(initialized, JSONRPCError) else "no answer")
    await session.deliver(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")))
    replays: list[tuple[str, dict[str, Any]]] = []
    if record.log_level:
        replays.append(("logging/setLevel", {"level": record.log_level}))
    replays += [("resources/subscribe", {"uri": uri}) for uri in record.subscriptions]
    for number, (method, params) in enumerate(replays, start=2):
        answer = await _replay(session, info, number, method, params)
        if isinstance(answer, JSONRPCError):
            # The old owner's server accepted it; if this one does not, the
            # session carries on without it rather than not at all.
            logger.warning(
                "Adopted MCP session %s: %s was refused: %s", short_id(session.id), method, answer.error.message
            )
    session.log_level = record.log_level
    session.subscriptions = list(record.subscriptions)
    resources = initialized.result.get("capabilities", {}).get("resources") or {}
    session.owe_updates(list(record.subscriptions), list_changed=bool(resources.get("listChanged")))


async def _replay(session: McpSession, info: RequestInfo, number: int, method: str, params: dict[str, Any]) -> Any:
    request = JSONRPCRequest(jsonrpc="2.0", id=f"{REPLAY_ID_PREFIX}{number}", method=method, params=params)
    stream = session.open_request_stream(request, json_response=True)
    assert stream.response is not None
    # A replay must not rewrite the record it is restoring.
    stream.change = None
    await session.deliver(SessionMessage(request, session.request_metadata(info, stream)))
    return await stream.response
