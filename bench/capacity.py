"""Scenario 4: idle handshake sessions with open standalone GET streams on one node.

One node (the echo server, JSON answers, `MCP_MAX_SESSIONS` above the largest
step) is measured with nothing open, then with each step's number of sessions
open: every session is initialized on its own keep-alive connection, which is
then handed over to the session's standalone GET stream and left idle. At each
point the harness reads the node's VmRSS from /proc/<pid>/status and times
`tools/call` on one extra session. Everything is closed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Step:
    sessions: int  # streams open while measured (0: the baseline)
    rss_kib: int
    calls: RunStats

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
    extra = {"MCP_MAX_SESSIONS": str(largest + 100)}
    with servers.our_node(log_dir, json_response=True, extra_env=extra, name="ours-capacity") as node:
        host = f"{servers.LOOPBACK}:{node.port}"
        probe = Connection(servers.LOOPBACK, node.port)
        streams: list[EventStream] = []
        try:
            call = handshake_call(host, await open_session(probe, host))
            for request_id in range(warmup):
                await probe.request(call(request_id))
            result.steps.append(await _step(node.pid, probe, call, 0, calls, settle))
            started = time.perf_counter()
            for target in sorted(steps):
                if target > usable:
                    continue
                await _open_streams(node.port, host, streams, target - len(streams))
                result.open_seconds = time.perf_counter() - started
                result.steps.append(await _step(node.pid, probe, call, target, calls, settle))
        finally:
            await probe.close()
            await _close_all(streams)
    return result


async def _step(pid: int, probe: Connection, call: RequestFactory, sessions: int, calls: int, settle: float) -> Step:
    """The node's memory with `sessions` streams open, then `calls` sequential `tools/call` on the probe."""
    await asyncio.sleep(settle)
    memory = rss_kib(pid)
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
    return Step(sessions, memory, stats)


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
