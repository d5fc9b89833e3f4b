"""The misroute logging middleware around the MCP consumer.

The consumer answers an unknown session id with 404 straight from this
process's table, never asking Redis on the request path. It leaves the id in a
slot this middleware put in the scope; once the response is out, the
middleware asks the registry who owned that session and writes one WARNING
record on logger `sessions_app.cluster.misroute` saying which case it was (see
routing.py): misroute, stale or unknown, with this node, the owner node and a
short hash of the session id (never the id itself).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sessions_app.cluster.node import this_node
from sessions_app.cluster.registry import RegistryUnavailable
from sessions_app.cluster.routing import MissKind, classify_miss, session_hash

logger = logging.getLogger("sessions_app.misroute")

SCOPE_KEY = "mcp.session_miss"


@dataclass
class MissSlot:
    session_id: str | None = None


def report_miss(scope: dict[str, Any], session_id: str) -> None:
    slot = scope.get(SCOPE_KEY)
    if isinstance(slot, MissSlot):
        slot.session_id = session_id


class MisrouteLoggingMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        slot = MissSlot()
        await self.inner({**scope, SCOPE_KEY: slot}, receive, send)
        if slot.session_id is not None:
            await log_miss(slot.session_id)


async def log_miss(session_id: str) -> MissKind:
    node = this_node()
    fields = {"miss": MissKind.UNKNOWN.value, "node": node.node_id, "owner": "", "session": session_hash(session_id)}
    reason = "no record"
    try:
        record = await node.registry.aget(session_id)
        owner_boot = await node.registry.anode_boot_id(record.node_id) if record is not None else None
    except RegistryUnavailable as exc:
        reason = f"registry unavailable: {exc}"
    else:
        kind = classify_miss(record, owner_boot)
        fields["miss"] = kind.value
        if record is not None:
            fields["owner"] = record.node_id
            reason = "owner alive" if kind is MissKind.MISROUTE else "owner gone"
    logger.warning(
        "MCP session miss: %s (session %s, this node %s, owner %s; %s)",
        fields["miss"],
        fields["session"],
        fields["node"],
        fields["owner"] or "-",
        reason,
        extra={"mcp_miss": fields},
    )
    return MissKind(fields["miss"])
