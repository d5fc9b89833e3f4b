"""Scenario 12: what recording metrics adds to a call, and what one scrape costs a node.

The request path records through sessions_app/metrics.py only: a `tools/call`
on an established session observes one operation histogram, and one answered
over SSE also moves the open-streams gauge up and down. Those exact calls run
here in a loop, CPU time per call (`time.process_time`) with the harness
pinned to its own core. Rarer events (a session opened or closed, a miss, a
registry read) record one counter or histogram each, the same order of cost.
A scrape renders every series in the text format, on the node's metrics
thread: timed after giving every label combination a node can have a value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import REGISTRY, generate_latest

from sessions_app import metrics


@dataclass(frozen=True)
class MetricsCost:
    per_call_us: dict[str, float]  # CPU microseconds per call, by answer type
    scrape_ms: float  # CPU milliseconds per scrape
    series: int  # samples in one scrape
    scrape_bytes: int


def _json_answer() -> None:
    metrics.observe_operation("tools/call", "handshake", failed=False, seconds=0.002)


def _sse_answer() -> None:
    metrics.sse_streams_open.inc()
    metrics.observe_operation("tools/call", "handshake", failed=False, seconds=0.002)
    metrics.sse_streams_open.dec()


def _per_call_us(record: Callable[[], None], iterations: int) -> float:
    for _ in range(1000):
        record()
    started = time.process_time()
    for _ in range(iterations):
        record()
    return (time.process_time() - started) / iterations * 1e6


def _every_series() -> None:
    """A value in every label combination a node can have: the largest scrape."""
    for method in (*metrics.KNOWN_METHODS, "other"):
        for era in ("handshake", "stateless"):
            for failed in (False, True):
                metrics.observe_operation(method, era, failed=failed, seconds=0.01)
    for name in metrics.REGISTRY_OPERATIONS:
        metrics.registry_duration.labels(name).observe(0.001)
    metrics.create_error_series()


def measure(iterations: int = 200_000, scrapes: int = 200) -> MetricsCost:
    per_call = {
        "JSON answer": _per_call_us(_json_answer, iterations),
        "SSE answer": _per_call_us(_sse_answer, iterations),
    }
    _every_series()
    text = generate_latest(REGISTRY)
    started = time.process_time()
    for _ in range(scrapes):
        generate_latest(REGISTRY)
    scrape_ms = (time.process_time() - started) / scrapes * 1000
    series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
    return MetricsCost(per_call, scrape_ms, series, len(text))
