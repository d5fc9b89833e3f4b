"""The SDK `Server` this process hosts on /mcp, with its lifespan entered once.

daphne has no ASGI lifespan, so the server's lifespan is entered on first use
and kept open for the life of the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from mcp.server import Server
from mcp.server._otel import OpenTelemetryMiddleware  # not exported; the SDK says to drop it from the list

from sessions_app.conf import mcp_settings


@dataclass(frozen=True)
class HostedServer:
    server: Server[Any]
    lifespan_state: Any
    # Whether another node may adopt its sessions (session/adoption.py).
    adoptable: bool = False
    # What each tool needs, "read" or "write" (auth/scopes.py); a tool not named needs "write".
    tool_access: Mapping[str, str] = field(default_factory=dict)


_hosted: HostedServer | None = None
_lock: asyncio.Lock | None = None
_exit_stack = AsyncExitStack()


def load_server(dotted_path: str) -> Server[Any]:
    try:
        server = import_string(dotted_path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"MCP_SERVER {dotted_path!r} cannot be imported: {exc}") from exc
    if not isinstance(server, Server):
        raise ImproperlyConfigured(f"MCP_SERVER {dotted_path!r} is not an mcp.server.Server instance")
    return server


def declared_tool_access(dotted_path: str) -> dict[str, str]:
    """The server module's `TOOL_ACCESS`: tool name to "read" or "write"."""
    declared = getattr(import_module(dotted_path.rpartition(".")[0]), "TOOL_ACCESS", {})
    if not isinstance(declared, Mapping) or not set(declared.values()) <= {"read", "write"}:
        raise ImproperlyConfigured(f"TOOL_ACCESS beside MCP_SERVER {dotted_path!r} must map tool names to read/write")
    return dict(declared)


def declares_adoptable(dotted_path: str, setting: bool | None) -> bool:
    """MCP_SERVER_ADOPTABLE when set, else what the server's module says (`ADOPTABLE = True`)."""
    if setting is not None:
        return setting
    module = import_module(dotted_path.rpartition(".")[0])
    return getattr(module, "ADOPTABLE", False) is True


def without_spans(server: Server[Any]) -> None:
    """Take the SDK's OpenTelemetry middleware off `server` (MCP_OTEL_SPANS off)."""
    server.middleware = [each for each in server.middleware if not isinstance(each, OpenTelemetryMiddleware)]


async def hosted_server() -> HostedServer:
    global _hosted, _lock
    if _hosted is not None:
        return _hosted
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        if _hosted is None:
            settings = mcp_settings()
            server = load_server(settings.server)
            if not settings.otel_spans:
                without_spans(server)
            state = await _exit_stack.enter_async_context(server.lifespan(server))
            _hosted = HostedServer(
                server,
                state,
                declares_adoptable(settings.server, settings.server_adoptable),
                declared_tool_access(settings.server),
            )
    return _hosted
