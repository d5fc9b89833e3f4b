"""Which node a session belongs to: pure functions, shared by the nodes and the proxy configuration.

A session id names its node: `<route>.<random>`. The route is a short,
opaque label of the node (`MCP_NODE_ROUTE`, by default derived from
`MCP_NODE_ID`), stable across restarts, so that a proxy can send a request
to the session's node on the `Mcp-Session-Id` header alone
(deploy/traefik_config.py builds one router per route). The random part is
192 bits. Ids without a route (older ones) are still served.

When a node does not hold a session, the registry's record and the owner's
heartbeat tell which of three cases the miss is:

- misroute: the owner is alive, elsewhere: the client reached the wrong node;
- stale: the record outlived its owner (crash, restart, deploy);
- unknown: no record at all (never existed, ended, reaped, or the registry
  could not be asked).

Nothing here imports Django: the deploy tooling uses it too.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sessions_app.cluster.registry import SessionRecord

# A route is a token safe in a URL, a header and a Traefik regular expression.
ROUTE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
ROUTE_SEPARATOR = "."
# 192 random bits as 48 hex digits: unguessable, and never mistaken for a
# command-line option (a base64 id may start with "-").
RANDOM_BYTES = 24


class MissKind(enum.StrEnum):
    MISROUTE = "misroute"
    STALE = "stale"
    UNKNOWN = "unknown"


def default_route(node_id: str) -> str:
    """The route of a node that sets none: 8 hex digits of its id's SHA-256 (opaque, never the host name)."""
    return hashlib.sha256(node_id.encode("utf-8")).hexdigest()[:8]


def is_valid_route(route: str) -> bool:
    return ROUTE_PATTERN.fullmatch(route) is not None


def new_session_id(route: str) -> str:
    """`<route>.<48 hex digits>`: visible ASCII, as the spec asks of a session id."""
    return f"{route}{ROUTE_SEPARATOR}{secrets.token_hex(RANDOM_BYTES)}"


def route_of(session_id: str) -> str | None:
    """The route a session id names, or None for an id without one."""
    route, separator, rest = session_id.partition(ROUTE_SEPARATOR)
    return route if separator and rest and is_valid_route(route) else None


def short_id(session_id: str) -> str:
    """The part of an id fit to show in logs and the admin: its route and 32 of its random bits.

    The id is a bearer secret; this much tells sessions apart without letting
    anyone who reads it use one.
    """
    route, separator, rest = session_id.partition(ROUTE_SEPARATOR)
    if separator and rest:
        return f"{route}{ROUTE_SEPARATOR}{rest[:8]}…"
    return f"{session_id[:8]}…"


def session_id_pattern(route: str) -> str:
    """A regular expression matching the session ids of one route (for the proxy's header rule)."""
    return f"^{re.escape(route)}\\{ROUTE_SEPARATOR}"


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
