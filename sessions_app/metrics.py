"""What a node counts, in the Prometheus text format (docs/operations.md lists every metric).

The names follow the OpenTelemetry semantic conventions for MCP where they
exist (`mcp.server.operation.duration` becomes
`mcp_server_operation_duration_seconds`); the rest are this cluster's own.
Labels take values from small fixed sets only, never a session id, a
principal or anything else a client chooses: a value a client could vary
would grow the node's memory and Prometheus's with every request.

The node serves them on a port of their own (`MCP_METRICS_PORT`), which the
balancer does not route to: `serve_metrics` starts prometheus_client's server
in a thread beside daphne. Recording costs a few microseconds per call
(benchmark scenario 12).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger(__name__)

# JSON-RPC methods named as themselves in the `method` label; any other is "other".
KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "server/discover",
    }
)
# Seconds: from a millisecond call to a tool that works for half a minute.
OPERATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds: sessions last from a second to days.
SESSION_BUCKETS = (1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0, 7 * 24 * 3600.0)
# Seconds: a change heard on another node within milliseconds, or late.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REGISTRY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Seconds: a young generation takes a fraction of a millisecond; a full collection,
# with thousands of sessions held, up to a second.
GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

operation_duration = Histogram(
    "mcp_server_operation_duration_seconds",
    "Time to answer one JSON-RPC request, from its arrival to its answer",
    ["method", "era", "outcome"],
    buckets=OPERATION_BUCKETS,
)
session_duration = Histogram(
    "mcp_server_session_duration_seconds",
    "Lifetime of the handshake-era sessions this node closed, by why they closed",
    ["reason"],
    buckets=SESSION_BUCKETS,
)
sessions_open = Gauge("mcp_sessions_open", "Handshake-era sessions held in this node's memory")
sessions_max = Gauge("mcp_sessions_max", "MCP_MAX_SESSIONS: past it, initialize gets 503")
sessions_opened = Counter("mcp_sessions_opened", "Handshake-era sessions created here by initialize")
sessions_closed = Counter("mcp_sessions_closed", "Sessions this node closed, by why", ["reason"])
session_misses = Counter("mcp_session_misses", "Requests for a session this node does not hold, by kind", ["kind"])
relays = Counter(
    "mcp_relays", "Requests for another node's session: relayed to it, or found its owner gone", ["outcome"]
)
adoptions = Counter("mcp_adoptions", "Sessions this node took over from a node that is gone")
sse_streams_open = Gauge("mcp_sse_streams_open", "SSE answers and standalone streams being written")
replays = Counter("mcp_replays", "Streams resumed with Last-Event-ID")
admission_refusals = Counter(
    "mcp_admission_refusals", "Requests refused for their size or the node's or client's limits", ["status"]
)
registry_errors = Counter("mcp_registry_errors", "Registry operations Redis did not answer", ["operation"])
registry_duration = Histogram(
    "mcp_registry_operation_duration_seconds",
    "Time of one registry operation in Redis",
    ["operation"],
    buckets=REGISTRY_BUCKETS,
)
notifications_published = Counter(
    "mcp_notifications_published", "Changes announced to the other nodes, by outcome", ["outcome"]
)
notifications_delivered = Counter(
    "mcp_notifications_delivered", "Changes handed to this node's listeners (merged ones count once)"
)
notification_lag = Histogram(
    "mcp_notification_lag_seconds",
    "From a change's publication on any node to its delivery to this node's listeners",
    buckets=LAG_BUCKETS,
)
authorization_failures = Counter(
    "mcp_authorization_failures", "Requests to /mcp refused by the resource server, by why", ["reason"]
)

gc_pauses = Histogram(
    "mcp_gc_pause_seconds",
    "Time the node stood still while Python's cyclic garbage collector ran, by generation (2: a full collection)",
    ["generation"],
    buckets=GC_PAUSE_BUCKETS,
)

ADMISSION_STATUSES = frozenset({413, 429, 503})
# The operations RedisSessionRegistry times and counts (sessions_app/cluster/registry/redis.py).
REGISTRY_OPERATIONS = (
    "add",
    "claim",
    "remove",
    "get",
    "records",
    "heartbeat",
    "forget_node",
    "live_nodes",
    "node_boot_id",
)


def method_label(method: object) -> str:
    return method if isinstance(method, str) and method in KNOWN_METHODS else "other"


def observe_operation(method: object, era: str, *, failed: bool, seconds: float) -> None:
    operation_duration.labels(method_label(method), era, "error" if failed else "ok").observe(seconds)


def count_refusal(status: int) -> None:
    """A refusal of the admission kind (size, rate, capacity); other statuses are not counted here."""
    if status in ADMISSION_STATUSES:
        admission_refusals.labels(str(status)).inc()


def watch_garbage_collection() -> None:
    """Time each run of the cyclic garbage collector into `gc_pauses` (once per process).

    The node answers nothing while it runs. A full collection walks every
    object the process holds outside `gc.freeze()` (mcpsite/asgi.py): with
    thousands of sessions open that is a million objects and hundreds of
    milliseconds (docs/operations.md).
    """
    if any(getattr(callback, "times_gc_pauses", False) for callback in gc.callbacks):
        return
    by_generation = [gc_pauses.labels(str(generation)) for generation in range(3)]
    started = 0.0

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started)

    on_collection.times_gc_pauses = True  # type: ignore[attr-defined]
    gc.callbacks.append(on_collection)


def create_error_series() -> None:
    """Put the error counters' known label values at 0 from the start.

    A labelled counter has no series until its first increment, so the first
    refusal or registry error would be invisible to `rate()` (the series starts
    at 1), and an alert or panel on them would query nothing until then
    (deploy/prometheus/alerts.yml, MCPRegistryUnavailable).
    """
    for status in ADMISSION_STATUSES:
        admission_refusals.labels(str(status))
    for operation in REGISTRY_OPERATIONS:
        registry_errors.labels(operation)


def serve_metrics(host: str, port: int, open_sessions: Callable[[], int], max_sessions: int) -> None:
    """Serve /metrics on host:port from a thread of its own."""
    sessions_open.set_function(open_sessions)
    sessions_max.set(max_sessions)
    create_error_series()
    start_http_server(port, addr=host)
    logger.info("Serving metrics on http://%s:%d/metrics", host, port)
