"""Which protocol era serves a request: a pure decision on its method, headers and body.

- The handshake era (2025-11-25 and older): `initialize` opens a session,
  `Mcp-Session-Id` names it on every later request; GET and DELETE exist only
  here.
- The 2026-07-28 era: no sessions; every POST carries its protocol version
  and client capabilities in `params._meta`.

The `MCP-Protocol-Version` header decides when present: handshake-era clients
send it only after `initialize`, naming a handshake version. Without it, the
`_meta` envelope does, except on `initialize`, which opens a handshake
session even when a client stamps the envelope on it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from mcp_types import PROTOCOL_VERSION_META_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from sessions_app.http.wire import PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER


class Era(enum.Enum):
    HANDSHAKE = "handshake"
    STATELESS = "2026-07-28"


def era_of(method: str, headers: Mapping[str, str], message: Mapping[str, Any] | None) -> Era:
    """`headers`: lower-cased names; `message`: the decoded POST body (None for GET and DELETE)."""
    if method != "POST" or message is None or SESSION_ID_HEADER in headers:
        return Era.HANDSHAKE
    version = headers.get(PROTOCOL_VERSION_HEADER)
    if version is not None:
        return Era.HANDSHAKE if version in HANDSHAKE_PROTOCOL_VERSIONS else Era.STATELESS
    if message.get("method") == "initialize":
        return Era.HANDSHAKE
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, Mapping) else None
    return Era.STATELESS if isinstance(meta, Mapping) and PROTOCOL_VERSION_META_KEY in meta else Era.HANDSHAKE
