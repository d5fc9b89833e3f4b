"""Registry records and registries for the tests of the admin page and the mcp_sessions command."""

from __future__ import annotations

import time
from typing import Any

from pytest_django import Settings

from sessions_app.cluster.registry import SessionRecord, SessionRegistry, session_registry
from sessions_app.cluster.registry.locmem import LocMemSessionRegistry
from sessions_app.cluster.routing import new_session_id
from tests.nodes import free_port

HANDSHAKE_VERSION = "2025-11-25"


def fresh_registry(settings: Settings) -> SessionRegistry:
    """This process's registry, new and empty for the test (and with it a new node and session manager).

    Changing an MCP_* setting drops the cached registry, node and manager, so
    no test sees another's records, and each test's closes run on a manager
    that has not yet met an event loop.
    """
    settings.MCP_SESSION_REGISTRY = "sessions_app.cluster.registry.locmem.LocMemSessionRegistry"
    settings.MCP_REGISTRY_OPTIONS = {}
    registry = session_registry()
    assert isinstance(registry, LocMemSessionRegistry)
    assert registry.records() == []
    return registry


def unreachable_registry(settings: Settings) -> None:
    """Point this process's registry at a Redis that is not there (a loopback port nobody listens on)."""
    settings.CACHES = {
        **settings.CACHES,
        "mcp_registry": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "KEY_FUNCTION": "sessions_app.cluster.registry.redis.raw_key",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        },
    }
    settings.MCP_SESSION_REGISTRY = "sessions_app.cluster.registry.redis.RedisSessionRegistry"
    settings.MCP_REGISTRY_OPTIONS = {"cache_alias": "mcp_registry"}


def record(node_id: str, boot_id: str, *, age: float = 5.0, **fields: Any) -> SessionRecord:
    """A record as a node writes it on publishing a session, created `age` seconds ago."""
    values: dict[str, Any] = {
        "session_id": new_session_id("test"),
        "node_id": node_id,
        "boot_id": boot_id,
        "channel_name": "",
        "created_at": time.time() - age,
        "protocol_version": HANDSHAKE_VERSION,
        "client_name": "raw-test",
        "client_version": "1",
        **fields,
    }
    return SessionRecord(**values)
