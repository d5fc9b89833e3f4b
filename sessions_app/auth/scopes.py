"""Which scope an MCP message needs: reading, unless it calls a tool its server does not mark read-only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessions_app.auth.conf import AuthSettings


def scope_needed(message: Mapping[str, Any] | None, tool_access: Mapping[str, str], settings: AuthSettings) -> str:
    """`message`: a decoded JSON-RPC message (None for GET and DELETE); `tool_access`: HostedServer.tool_access."""
    if message is not None and message.get("method") == "tools/call":
        params = message.get("params")
        name = params.get("name") if isinstance(params, Mapping) else None
        # Undeclared tools need writing: forgetting a declaration must not open a door.
        if not isinstance(name, str) or tool_access.get(name) != "read":
            return settings.write_scope
    return settings.read_scope
