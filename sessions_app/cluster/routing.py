"""Who owns a session we could not find in this process: a pure decision.

Given the registry's record for a session id (if any), the live nodes'
heartbeats and this node's identity, say which of three cases a 404 was:

- misroute: the owner is alive, elsewhere: the client reached the wrong node;
- stale: the record outlived its owner (crash, restart, deploy);
- unknown: no record at all (never existed, ended, reaped, or the registry
  could not be asked).
"""

from __future__ import annotations

import enum
import hashlib

from sessions_app.cluster.registry import SessionRecord


class MissKind(enum.StrEnum):
    MISROUTE = "misroute"
    STALE = "stale"
    UNKNOWN = "unknown"


def classify_miss(record: SessionRecord | None, owner_boot_id: str | None) -> MissKind:
    """`owner_boot_id`: the owner node's current heartbeat, None if it has none."""
    if record is None:
        return MissKind.UNKNOWN
    if owner_boot_id is not None and owner_boot_id == record.boot_id:
        return MissKind.MISROUTE
    return MissKind.STALE


def session_hash(session_id: str) -> str:
    """A short, stable handle for logs: never log the id itself, which is a bearer secret."""
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()[:12]
