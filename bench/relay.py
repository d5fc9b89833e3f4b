"""Scenario 8: the relay's cost: `tools/call` sent to the session's node, and to a node that relays it there.

Two daphne nodes of ours (the echo server) share a private redis-server, as
cluster nodes do: the registry, and each node's pub/sub inbox
(sessions_app/cluster/inbox.py). One handshake-era session is opened on the
owner. The same request bytes then go two ways, alternating slice by slice:

- `direct`: to the owner's own port;
- `relayed`: to the other node (the edge), which does not hold the session,
  finds its owner in the registry (once: owners are then remembered), publishes
  the request to the owner's inbox and writes back the answer the owner
  publishes to its own (sessions_app/http/relay.py).

This is what happens when a request for a session reaches a node that does
not hold it: a proxy with no MCP rules, a round-robin Service. Both nodes run
on the server core, Redis and the harness on the client core, as in the other
scenarios; each answer mode (SSE, the default, and JSON) gets its own pair of
nodes, since the mode is a node's setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import servers
from .load import RunStats, run_load
from .messages import RequestFactory, handshake_call, open_session
from .rawhttp import Connection
from .throughput import Plan

MODES = ("sse", "json")
PATHS = ("direct", "relayed")
# Each round of a plan is sent in this many slices, the two paths taking turns.
SLICES_PER_ROUND = 5
# The owner writes a session's record in the background (ADR 5): the edge may miss it for a moment.
RECORD_WAIT_SECONDS = 10.0


@dataclass
class RelayRow:
    mode: str  # "sse" or "json"
    direct: RunStats
    relayed: RunStats
    # Each process's CPU per request, in microseconds, over the runs of one path.
    cpu_us: dict[str, dict[str, float]] = field(default_factory=dict)
    # The relayed minus the direct median of every pair of adjacent slices, in ms.
    paired_ms: list[float] = field(default_factory=list, repr=False)

    def stats(self, path: str) -> RunStats:
        return self.direct if path == "direct" else self.relayed

    @property
    def added_median_ms(self) -> float:
        return self.relayed.median_ms - self.direct.median_ms

    @property
    def added_p99_ms(self) -> float:
        return self.relayed.p99_ms - self.direct.p99_ms


@dataclass
class RelayCost:
    rows: list[RelayRow]
    plan: Plan
    slice_size: int
    pinned: bool

    def row(self, mode: str) -> RelayRow | None:
        return next((row for row in self.rows if row.mode == mode), None)

    @property
    def errors(self) -> int:
        return sum(row.direct.errors + row.relayed.errors for row in self.rows)


async def measure(plan: Plan, log_dir: Path, modes: tuple[str, ...] = MODES) -> RelayCost:
    size = max(1, plan.requests // SLICES_PER_ROUND)
    with servers.redis_server(log_dir) as redis:
        redis_url = f"redis://{servers.LOOPBACK}:{redis.port}/0"
        rows = [await _measure_mode(mode, plan, size, log_dir, redis_url, redis.pid) for mode in modes]
    return RelayCost(rows=rows, plan=plan, slice_size=size, pinned=servers.pinning_available())


async def _measure_mode(mode: str, plan: Plan, size: int, log_dir: Path, redis_url: str, redis_pid: int) -> RelayRow:
    json_response = mode == "json"
    owner, edge = (
        servers.our_node(log_dir, json_response=json_response, redis_url=redis_url, name=f"relay-{role}-{mode}")
        for role in ("owner", "edge")
    )
    with contextlib.ExitStack() as running:
        for process in (owner, edge):  # started together: two Django start-ups overlap
            running.callback(process.stop)
            process.launch()
        for process in (owner, edge):
            process.wait_listening()
        # The owner's Host on both paths: the edge passes the request on as it came.
        host = f"{servers.LOOPBACK}:{owner.port}"
        connection = Connection(servers.LOOPBACK, owner.port)
        try:
            factory = handshake_call(host, await open_session(connection, host))
        finally:
            await connection.close()
        ports = {"direct": owner.port, "relayed": edge.port}
        await _wait_until_relayed(edge.port, factory)
        for path in PATHS:
            await run_load(servers.LOOPBACK, ports[path], factory, plan.warmup, 1)
        pids = {"owner": owner.pid, "edge": edge.pid, "redis": redis_pid}
        runs: dict[str, list[RunStats]] = {path: [] for path in PATHS}
        cpu = {path: dict.fromkeys(pids, 0.0) for path in PATHS}
        paired: list[float] = []
        for number in range(plan.rounds * SLICES_PER_ROUND):
            # Short slices, the paths taking turns (who goes first alternates): a load that
            # comes and goes on the shared machine lands on both alike.
            order = PATHS if number % 2 == 0 else PATHS[::-1]
            for path in order:
                before = {name: servers.cpu_seconds(pid) for name, pid in pids.items()}
                runs[path].append(await run_load(servers.LOOPBACK, ports[path], factory, size, 1))
                for name, pid in pids.items():
                    cpu[path][name] += servers.cpu_seconds(pid) - before[name]
            paired.append(runs["relayed"][-1].median_ms - runs["direct"][-1].median_ms)
    direct, relayed = RunStats.combine(runs["direct"]), RunStats.combine(runs["relayed"])
    requests = {"direct": direct.requests, "relayed": relayed.requests}
    per_request = {
        path: {name: seconds / max(1, requests[path]) * 1e6 for name, seconds in used.items()}
        for path, used in cpu.items()
    }
    return RelayRow(mode=mode, direct=direct, relayed=relayed, cpu_us=per_request, paired_ms=paired)


async def _wait_until_relayed(port: int, factory: RequestFactory) -> None:
    """Until the edge relays the call (the owner's record is written in the background), bounded."""
    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    while True:
        stats = await run_load(servers.LOOPBACK, port, factory, 1, 1)
        if not stats.errors:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the edge node relayed nothing within {RECORD_WAIT_SECONDS:g} s: {stats.first_error}")
        await asyncio.sleep(0.1)
