"""A session this process does not hold: whose is it, and the log record that says so.

`locate_miss` asks the registry (the only registry read on the request path,
and only on a miss) for the session's record and its owner's heartbeat, and
classifies the miss (routing.classify_miss): misroute (owner alive
elsewhere), stale (owner gone) or unknown (no record, or no registry).
Owners the relay reached are remembered in a bounded table
(`remember_owner`), so a client that keeps arriving at the wrong node costs
one registry read, not one per request; `forget_owner` drops an entry the
relay found wrong (the owner gone, or the session ended there).

Ids nobody holds cost a registry read each, and anyone can send them. So an
id the registry just said it does not know is remembered for
`UNKNOWN_ID_SECONDS` (at most `MAX_UNKNOWN_IDS` ids, oldest out first) and
answered from memory meanwhile; and lookups of ids not known either way are
limited to `MCP_MISS_LOOKUPS_PER_SECOND` per process (a token bucket):
past it, a miss is answered as unknown (404) without asking. A session
created after its id was found unknown cannot exist (ids are random and
never reused), so the first only spares work; the second can turn a
misroute or an adoption into a 404 during a flood, which the client recovers
from as from any 404: it sends `initialize` again.

`log_miss` writes one WARNING per miss on logger `sessions_app.misroute`:
the kind, this node, the owner, a short hash of the id (never the id, a
bearer secret) and what became of the request (relayed, or 404). The
logger is rate-limited (settings.LOGGING, sessions_app/log_rate_limit.py).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from sessions_app import metrics
from sessions_app.cluster.node import this_node
from sessions_app.cluster.registry import RegistryUnavailable, SessionRecord
from sessions_app.cluster.routing import MissKind, classify_miss, session_hash
from sessions_app.conf import mcp_settings

logger = logging.getLogger("sessions_app.misroute")

# Owners remembered per session id (a record is a few hundred bytes).
MAX_KNOWN_OWNERS = 10_000

_known_owners: OrderedDict[str, SessionRecord] = OrderedDict()

# Ids the registry just said it does not know, with when to ask again.
# Short: after Redis restarts empty, a live session's record is back only once
# its node has written it again (at its next heartbeat).
UNKNOWN_ID_SECONDS = 2.0
MAX_UNKNOWN_IDS = 10_000

_unknown_ids: OrderedDict[str, float] = OrderedDict()


class _LookupBudget:
    """A token bucket: `rate` registry lookups a second, at most `rate` saved up."""

    def __init__(self) -> None:
        self.tokens = 0.0
        self.updated = float("-inf")

    def take(self, rate: float) -> bool:
        now = time.monotonic()
        self.tokens = min(rate, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


_lookups = _LookupBudget()


@dataclass(frozen=True)
class Miss:
    session_id: str
    kind: MissKind
    # The registry's record; for a misroute, the live owner's.
    record: SessionRecord | None
    reason: str


async def locate_miss(session_id: str) -> Miss:
    known = _known_owners.get(session_id)
    if known is not None:
        _known_owners.move_to_end(session_id)
        return Miss(session_id, MissKind.MISROUTE, known, "owner alive")
    now = time.monotonic()
    if _unknown_ids.get(session_id, 0.0) > now:
        return Miss(session_id, MissKind.UNKNOWN, None, f"no record (asked less than {UNKNOWN_ID_SECONDS:.0f} s ago)")
    _unknown_ids.pop(session_id, None)
    if not _lookups.take(mcp_settings().miss_lookups_per_second):
        return Miss(session_id, MissKind.UNKNOWN, None, "not looked up: too many misses")
    node = this_node()
    try:
        record = await node.registry.aget(session_id)
        owner_boot = await node.registry.anode_boot_id(record.node_id) if record is not None else None
    except RegistryUnavailable as exc:
        return Miss(session_id, MissKind.UNKNOWN, None, f"registry unavailable: {exc}")
    kind = classify_miss(record, owner_boot)
    if record is None:
        _remember_unknown(session_id, now + UNKNOWN_ID_SECONDS)
        return Miss(session_id, kind, None, "no record")
    if kind is MissKind.MISROUTE and (record.node_id, record.boot_id) == (node.node_id, node.boot_id):
        # Our own record for a session we no longer hold: it ended here, and
        # the delete of its record is still on its way.
        return Miss(session_id, MissKind.STALE, record, "ended on this node")
    return Miss(session_id, kind, record, "owner alive" if kind is MissKind.MISROUTE else "owner gone")


def _remember_unknown(session_id: str, until: float) -> None:
    _unknown_ids[session_id] = until
    while len(_unknown_ids) > MAX_UNKNOWN_IDS:
        _unknown_ids.popitem(last=False)


def remember_owner(record: SessionRecord) -> None:
    """The relay reached this session's owner: the next miss for it needs no registry read."""
    _known_owners[record.session_id] = record
    _known_owners.move_to_end(record.session_id)
    while len(_known_owners) > MAX_KNOWN_OWNERS:
        _known_owners.popitem(last=False)


def forget_owner(session_id: str) -> None:
    """The owner we remembered no longer serves this session (it ended, or its node is gone)."""
    _known_owners.pop(session_id, None)


def log_miss(miss: Miss, outcome: str) -> None:
    """Log and count `miss`: once per request that missed, whatever came of it."""
    metrics.session_misses.labels(miss.kind.value).inc()
    node = this_node()
    owner = miss.record.node_id if miss.record is not None else ""
    fields = {"miss": miss.kind.value, "node": node.node_id, "owner": owner, "session": session_hash(miss.session_id)}
    logger.warning(
        "MCP session miss: %s (session %s, this node %s, owner %s; %s): %s",
        miss.kind.value,
        fields["session"],
        node.node_id,
        owner or "-",
        miss.reason,
        outcome,
        extra={"mcp_miss": {**fields, "outcome": outcome}},
    )
