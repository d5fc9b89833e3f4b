"""Scenario 4: idle handshake sessions with open standalone GET streams on one node.

One node (the echo server, JSON answers, `MCP_MAX_SESSIONS` above the largest
step) is measured with nothing open, then with each step's number of sessions
open: every session is initialized on its own keep-alive connection, which is
then handed over to the session's standalone GET stream and left idle. At each
point the harness reads the node's VmRSS from /proc/<pid>/status and times
`tools/call` on one extra session, reading the node's garbage-collector pauses
(`mcp_gc_pause_seconds`, from its metrics port) before and after the calls.
Everything is closed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from . import servers
from .eventstream import EventStream, standalone_get
from .load import RunStats
from .messages import EXPECTED_IN_ANSWER, RequestFactory, handshake_call, open_session
from .rawhttp import Connection

# File descriptors the harness needs besides one per stream (logs, Redis, the probe...).
SPARE_FDS = 256
# Sessions being opened at once.
OPEN_CONCURRENCY = 32
# Let the node settle (allocator, GC) before reading its memory.
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Pauses:
    """The node's garbage-collector pauses over a stretch of time: how many, and their seconds in all."""

    count: int = 0
    seconds: float = 0.0


@dataclass
class Step:
    sessions: int  # streams open while measured (0: the baseline)
    rss_kib: int
    calls: RunStats
    # Collections during the timed calls: full ones (generation 2), and the younger generations together.
    full_collections: Pauses = field(default_factory=Pauses)
    young_collections: Pauses = field(default_factory=Pauses)

    def per_session_kib(self, baseline: Step) -> float:
        return (self.rss_kib - baseline.rss_kib) / self.sessions if self.sessions else 0.0


@dataclass
class Capacity:
    requested: Sequence[int]  # the steps asked for
    fd_limit: tuple[int, int]  # (soft, hard) after raising the soft limit
    steps: list[Step] = field(default_factory=list)  # the baseline first
    note: str = ""  # why a step was cut short or skipped, if one was
    open_seconds: float = 0.0  # wall time spent opening all the sessions
    settle: float = SETTLE_SECONDS  # seconds waited before each memory reading

    @property
    def baseline(self) -> Step:
        return self.steps[0]


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def measure(
    log_dir: Path, *, steps: Sequence[int], calls: int, warmup: int, settle: float = SETTLE_SECONDS
) -> Capacity:
    largest = max(steps)
    # The node inherits this limit, and needs one descriptor per stream too.
    soft, hard = raise_fd_limit(largest + SPARE_FDS)
    result = Capacity(requested=list(steps), fd_limit=(soft, hard), settle=settle)
    usable = soft - SPARE_FDS
    if usable < largest:
        result.note = (
            f"The file-descriptor limit (soft {soft}, hard {hard}) allows about {usable} streams; "
            f"steps above that were skipped. Raise the hard limit (`ulimit -Hn`) to measure them."
        )
    metrics_port = servers.free_port()
    extra = {"MCP_MAX_SESSIONS": str(largest + 100), "MCP_METRICS_PORT": str(metrics_port)}
    with servers.our_node(log_dir, json_response=True, extra_env=extra, name="ours-capacity") as node:
        host = f"{servers.LOOPBACK}:{node.port}"
        probe = Connection(servers.LOOPBACK, node.port)
        streams: list[EventStream] = []
        pauses_url = f"http://{servers.LOOPBACK}:{metrics_port}/metrics"
        try:
            call = handshake_call(host, await open_session(probe, host))
            for request_id in range(warmup):
                await probe.request(call(request_id))
            result.steps.append(await _step(node.pid, probe, call, 0, calls, settle, pauses_url))
            started = time.perf_counter()
            for target in sorted(steps):
                if target > usable:
                    continue
                await _open_streams(node.port, host, streams, target - len(streams))
                result.open_seconds = time.perf_counter() - started
                result.steps.append(await _step(node.pid, probe, call, target, calls, settle, pauses_url))
        finally:
            await probe.close()
            await _close_all(streams)
    return result


def gc_pauses(metrics_text: str) -> dict[str, Pauses]:
    """`mcp_gc_pause_seconds` by generation ("0", "1", "2") from a node's /metrics text."""
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "mcp_gc_pause_seconds":
            continue
        for sample in family.samples:
            generation = sample.labels.get("generation", "")
            if sample.name.endswith("_count"):
                counts[generation] = sample.value
            elif sample.name.endswith("_sum"):
                sums[generation] = sample.value
    return {generation: Pauses(int(counts[generation]), sums.get(generation, 0.0)) for generation in counts}


def _since(before: dict[str, Pauses], after: dict[str, Pauses], generations: Sequence[str]) -> Pauses:
    empty = Pauses()
    return Pauses(
        sum(after.get(g, empty).count - before.get(g, empty).count for g in generations),
        sum(after.get(g, empty).seconds - before.get(g, empty).seconds for g in generations),
    )


async def _read_pauses(url: str) -> dict[str, Pauses]:
    def read() -> str:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  # our own node, on loopback
            return str(response.read().decode())

    return gc_pauses(await asyncio.to_thread(read))


async def _step(
    pid: int, probe: Connection, call: RequestFactory, sessions: int, calls: int, settle: float, pauses_url: str
) -> Step:
    """The node's memory with `sessions` streams open, then `calls` sequential `tools/call` on the probe,
    and the collector's pauses during them."""
    await asyncio.sleep(settle)
    memory = rss_kib(pid)
    pauses_before = await _read_pauses(pauses_url)
    stats = RunStats(requests=calls, seconds=0.0, latencies=[])
    started, cpu_started = time.perf_counter(), time.process_time()
    for request_id in range(calls):
        sent = time.perf_counter()
        response = await probe.request(call(100_000 + request_id))
        stats.latencies.append(time.perf_counter() - sent)
        if response.status != 200 or EXPECTED_IN_ANSWER not in response.body:
            stats.errors += 1
            stats.first_error = stats.first_error or f"HTTP {response.status}: {response.body[:200]!r}"
    stats.seconds = time.perf_counter() - started
    stats.client_cpu = time.process_time() - cpu_started
    pauses_after = await _read_pauses(pauses_url)
    return Step(
        sessions,
        memory,
        stats,
        full_collections=_since(pauses_before, pauses_after, ["2"]),
        young_collections=_since(pauses_before, pauses_after, ["0", "1"]),
    )


async def _open_streams(port: int, host: str, streams: list[EventStream], count: int) -> None:
    remaining = iter(range(count))

    async def opener() -> None:
        for _ in remaining:
            connection = Connection(servers.LOOPBACK, port)
            try:
                session_id = await open_session(connection, host)
                stream = EventStream(*connection.detach())
            except BaseException:
                await connection.close()
                raise
            try:
                await stream.start(standalone_get(host, session_id))
                await stream.next_event()  # the priming event: the stream is open and attached
            except BaseException:
                await stream.close()
                raise
            streams.append(stream)

    await asyncio.gather(*(opener() for _ in range(OPEN_CONCURRENCY)))


async def _close_all(streams: list[EventStream]) -> None:
    for start in range(0, len(streams), 500):
        with contextlib.suppress(OSError):
            await asyncio.gather(*(stream.close() for stream in streams[start : start + 500]))
