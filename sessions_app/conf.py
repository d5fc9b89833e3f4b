"""The MCP endpoint's settings, read from Django settings on first use.

Library code never reads settings at import time: `mcp_settings()` builds a
frozen snapshot once and drops it whenever a test overrides a setting.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from sessions_app.cluster.routing import default_route, is_valid_route


@dataclass(frozen=True)
class McpSettings:
    server: str
    node_id: str
    node_route: str
    allowed_origins: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    max_sessions: int
    session_idle_timeout: float
    max_body_bytes: int
    max_requests_per_session: int
    event_log_max_events: int
    event_log_max_bytes: int
    sse_retry_ms: int
    sse_keepalive: float
    json_response: bool
    node_heartbeat_ttl: float
    reaper_interval: float
    stale_grace: float
    shutdown_drain_delay: float
    shutdown_grace: float
    # Where the relay between nodes publishes (Redis); empty: no relay (one node, or MCP_RELAY off).
    relay_url: str = ""
    # Adoption of sessions whose owner is gone (session/adoption.py), and
    # leaving sessions to it on SIGTERM instead of closing them.
    adoption: bool = False
    # None: the hosted server's module decides (ADOPTABLE).
    server_adoptable: bool | None = None
    # The SDK's OpenTelemetry span around every request (hosted_server.py).
    otel_spans: bool = False
    shutdown_handoff: bool = False
    # Fair admission (session/admission.py) and the timers for sessions nobody uses.
    session_unused_timeout: float = 60.0
    session_abandoned_timeout: float = 300.0
    max_sessions_per_client: int = 0
    max_listen_streams_per_client: int = 0
    proxy_hops: int = 0
    # Registry lookups per second for session ids this process does not hold (cluster/misroute.py).
    miss_lookups_per_second: float = 500.0
    # What the production server lets pile up unsent for a slow SSE reader (mcpsite/http_server.py).
    sse_max_unsent_bytes: int = 1024 * 1024
    sse_slow_reader_grace: float = 10.0

    @property
    def relay(self) -> bool:
        return bool(self.relay_url)


@functools.cache
def mcp_settings() -> McpSettings:
    loaded = McpSettings(
        server=settings.MCP_SERVER,
        node_id=settings.MCP_NODE_ID,
        node_route=settings.MCP_NODE_ROUTE or default_route(settings.MCP_NODE_ID),
        allowed_origins=tuple(origin.rstrip("/").lower() for origin in settings.MCP_ALLOWED_ORIGINS),
        allowed_hosts=tuple(host.lower() for host in settings.MCP_ALLOWED_HOSTS),
        max_sessions=settings.MCP_MAX_SESSIONS,
        session_idle_timeout=settings.MCP_SESSION_IDLE_TIMEOUT,
        session_unused_timeout=settings.MCP_SESSION_UNUSED_TIMEOUT,
        session_abandoned_timeout=settings.MCP_SESSION_ABANDONED_TIMEOUT,
        max_sessions_per_client=settings.MCP_MAX_SESSIONS_PER_CLIENT,
        max_listen_streams_per_client=settings.MCP_MAX_LISTEN_STREAMS_PER_CLIENT,
        proxy_hops=settings.MCP_PROXY_HOPS,
        max_body_bytes=settings.MCP_MAX_BODY_BYTES,
        max_requests_per_session=settings.MCP_MAX_REQUESTS_PER_SESSION,
        event_log_max_events=settings.MCP_EVENT_LOG_MAX_EVENTS,
        event_log_max_bytes=settings.MCP_EVENT_LOG_MAX_BYTES,
        sse_retry_ms=settings.MCP_SSE_RETRY_MS,
        sse_keepalive=settings.MCP_SSE_KEEPALIVE,
        json_response=settings.MCP_JSON_RESPONSE,
        node_heartbeat_ttl=settings.MCP_NODE_HEARTBEAT_TTL,
        reaper_interval=settings.MCP_REAPER_INTERVAL,
        stale_grace=settings.MCP_STALE_GRACE,
        shutdown_drain_delay=settings.MCP_SHUTDOWN_DRAIN_DELAY,
        shutdown_grace=settings.MCP_SHUTDOWN_GRACE,
        relay_url=settings.REDIS_URL if settings.MCP_RELAY else "",
        adoption=settings.MCP_ADOPTION,
        server_adoptable=settings.MCP_SERVER_ADOPTABLE,
        otel_spans=settings.MCP_OTEL_SPANS,
        shutdown_handoff=settings.MCP_SHUTDOWN_HANDOFF,
        miss_lookups_per_second=settings.MCP_MISS_LOOKUPS_PER_SECOND,
        sse_max_unsent_bytes=settings.MCP_SSE_MAX_UNSENT_BYTES,
        sse_slow_reader_grace=settings.MCP_SSE_SLOW_READER_GRACE,
    )
    for name in (
        "max_sessions",
        "max_body_bytes",
        "max_requests_per_session",
        "event_log_max_events",
        "sse_max_unsent_bytes",
    ):
        if getattr(loaded, name) <= 0:
            raise ImproperlyConfigured(f"MCP_{name.upper()} must be a positive integer")
    for name in ("max_sessions_per_client", "max_listen_streams_per_client", "proxy_hops"):
        if getattr(loaded, name) < 0:
            raise ImproperlyConfigured(f"MCP_{name.upper()} must be 0 or more")
    for name in (
        "miss_lookups_per_second",
        "session_idle_timeout",
        "session_unused_timeout",
        "session_abandoned_timeout",
        "sse_slow_reader_grace",
        "sse_keepalive",
        "node_heartbeat_ttl",
        "reaper_interval",
        "shutdown_grace",
    ):
        if getattr(loaded, name) <= 0:
            raise ImproperlyConfigured(f"MCP_{name.upper()} must be a positive number of seconds")
    if not is_valid_route(loaded.node_route):
        raise ImproperlyConfigured("MCP_NODE_ROUTE must be 1-32 letters, digits, '-' or '_'")
    return loaded


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: object) -> None:
    if setting.startswith("MCP_"):
        mcp_settings.cache_clear()
