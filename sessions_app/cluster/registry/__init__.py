"""The session registry backend chosen by MCP_SESSION_REGISTRY (see base.py for the contract)."""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import ListedRecord, RegistryUnavailable, SessionRecord, SessionRegistry

__all__ = ["ListedRecord", "RegistryUnavailable", "SessionRecord", "SessionRegistry", "session_registry"]


@functools.cache
def session_registry() -> SessionRegistry:
    """The process's registry, built from settings on first use."""
    backend = import_string(settings.MCP_SESSION_REGISTRY)
    registry: SessionRegistry = backend(
        session_ttl=settings.MCP_SESSION_TTL, node_ttl=settings.MCP_NODE_HEARTBEAT_TTL, **settings.MCP_REGISTRY_OPTIONS
    )
    return registry


@receiver(setting_changed)
def _forget_registry(*, setting: str, **kwargs: object) -> None:
    if setting.startswith("MCP_") or setting == "CACHES":
        session_registry.cache_clear()
