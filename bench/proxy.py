"""Scenario 3: `tools/call` through the local Traefik cluster and straight to the node behind it.

The cluster is deploy/cluster.py's, the one `make cluster` runs: three daphne
nodes, Traefik on HTTPS with a throwaway CA, a private redis-server, with a
temporary state directory and free loopback ports. The bench gives the nodes the
echo server with JSON answers and keeps the committed health-check timing.
Once started, the nodes and Traefik are moved to the server core (Redis stays
on the client core, as in the other scenarios).

One handshake-era session is opened through Traefik, whose sticky cookie pins it
to one node. The same session is then called, alternating, five ways with the
same request bytes (Host, cookie, session id), but for the last, which sends
no cookie:

- `direct`: plain HTTP to that node's own port;
- `traefik-http`: a second, bench-only Traefik whose configuration is the
  cluster's own (deploy/traefik_config.py) with TLS taken off the entrypoint
  and the routers, to tell Traefik's own cost from TLS's;
- `traefik-http-sticky`: the same bench-only Traefik on a second entrypoint
  that has only the sticky-cookie router (`mcp`, the routing before ADR 8);
- `traefik-https`: the cluster's Traefik over TLS, the way clients reach it;
- `traefik-https-header`: the same, from a client that keeps no cookie.

The session id names its node, so on the cluster's own entrypoint the node's
header router (`mcp-<node>`, priority 250) takes the request whether or not
it carries the cookie; only the bench-only second entrypoint routes it by the
cookie. Which router served each path is read back from Traefik's access logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy import traefik_config
from deploy.cluster import Cluster, ClusterConfig, traefik_binary

from . import servers
from .load import RunStats, run_load
from .messages import handshake_call, open_sticky_session
from .rawhttp import Connection, render_request
from .throughput import Plan

PATHS = ("direct", "traefik-http", "traefik-http-sticky", "traefik-https", "traefik-https-header")
# The bench-only Traefik's second entrypoint: every router but the per-node header routers.
STICKY_ENTRYPOINT = "sticky-only"
STICKY_SUFFIX = "-sticky-only"
CONCURRENCIES = (1, 32)
# Each round of a plan is sent in this many slices, the paths taking turns.
SLICES_PER_ROUND = 5
NODE_ENV = {
    "MCP_SERVER": servers.ECHO_SERVER,
    "MCP_JSON_RESPONSE": "1",
    # The load generator sends no tokens, and stands for thousands of clients (see servers.node_env).
    "MCP_AUTH": "off",
    "MCP_MAX_SESSIONS_PER_CLIENT": "0",
    "MCP_MAX_LISTEN_STREAMS_PER_CLIENT": "0",
    # The committed shutdown timing (MCP_SHUTDOWN_DRAIN_DELAY 2 s, time for Traefik's 1 s health
    # check to see the 503): scenario 9 restarts these nodes the way a deploy does. The cluster's
    # nodes stop together at the end, so it costs the run one delay.
}


@dataclass
class PathRow:
    path: str  # one of PATHS
    concurrency: int
    stats: RunStats
    # The median of each slice, ms, in the order sent: slice n of every path ran in the same turn.
    slice_medians: list[float] = field(default_factory=list, repr=False)


@dataclass
class ProxyCost:
    node: str  # the node the session is pinned to
    rows: list[PathRow]
    plan: Plan
    slice_size: int  # requests per turn of one path
    pinned: bool  # nodes and Traefik moved to the server core
    tls: str  # what the HTTPS path negotiated: protocol version and cipher
    cpu: CpuUse  # the server core over all the measured rows
    # Measured /mcp requests by where they entered and the router Traefik's access log names.
    routers: dict[str, Counter[str]] = field(default_factory=dict)

    def row(self, path: str, concurrency: int) -> PathRow:
        return next(row for row in self.rows if row.path == path and row.concurrency == concurrency)

    def paired_ms(self, path: str, base: str, concurrency: int) -> list[float]:
        """`path`'s slice medians minus `base`'s, turn by turn (the two ran back to back), ms."""
        pairs = zip(self.row(path, concurrency).slice_medians, self.row(base, concurrency).slice_medians, strict=True)
        return [ours - theirs for ours, theirs in pairs]

    def added_median_ms(self, path: str, concurrency: int, base: str = "direct") -> float:
        return self.row(path, concurrency).stats.median_ms - self.row(base, concurrency).stats.median_ms

    @property
    def errors(self) -> int:
        return sum(row.stats.errors for row in self.rows)


# --- the cluster, as the bench runs it ------------------------------------------------


@contextlib.asynccontextmanager
async def cluster(log_dir: Path) -> AsyncIterator[Cluster]:
    """deploy/cluster.py's cluster under log_dir/cluster, on free ports, its servers on the server core."""
    ports: list[int] = []
    while len(ports) < 10:
        port = servers.free_port()
        if port not in ports:
            ports.append(port)
    config = ClusterConfig(
        state_dir=log_dir / "cluster",
        https_port=ports[0],
        node_ports=(ports[1], ports[2], ports[3]),
        api_port=ports[4],
        redis_port=ports[5],
        traefik_metrics_port=ports[6],
        metrics_ports=(ports[7], ports[8], ports[9]),
        # No Prometheus: it would take CPU from the server core the figures are about.
        prometheus_port=None,
        node_env=NODE_ENV,
    )
    started = Cluster(config)
    try:
        await asyncio.to_thread(started.start)
        for service in (*started.nodes.values(), started.traefik):
            assert service is not None
            assert service.pid is not None
            move_to_server_core(service.pid)
        yield started
    finally:
        await asyncio.to_thread(started.stop)


def move_to_server_core(pid: int) -> bool:
    """Every thread of a running process onto the server core (`taskset -a -p`); False without pinning."""
    if not servers.pinning_available():
        return False
    for task in Path(f"/proc/{pid}/task").iterdir():
        # A thread may exit between listing and pinning; it needs no core then.
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), {servers.SERVER_CORE})
    return True


def _core_jiffies(core: int) -> tuple[int, int]:
    """(busy, total) clock ticks of one core since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(value) for value in line.split()[1:8]]
            return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy
    raise RuntimeError(f"no cpu{core} line in /proc/stat")


@dataclass(frozen=True)
class CpuUse:
    core: float  # share of the server core that was busy, whoever kept it busy
    processes: dict[str, float]  # cores each named process used

    @property
    def others(self) -> float:
        """What the named processes do not explain: the kernel, or another load on the server core."""
        return max(0.0, self.core - sum(self.processes.values()))


class CpuMeter:
    """The server core's and some processes' CPU from now until read()."""

    def __init__(self, pids: dict[str, int] | None = None) -> None:
        self.pids = dict(pids or {})
        self._wall = time.monotonic()
        self._core = _core_jiffies(servers.SERVER_CORE)
        self._cpu = {name: servers.cpu_seconds(pid) for name, pid in self.pids.items()}

    def read(self) -> CpuUse:
        wall = max(1e-9, time.monotonic() - self._wall)
        busy, total = _core_jiffies(servers.SERVER_CORE)
        return CpuUse(
            core=(busy - self._core[0]) / max(1, total - self._core[1]),
            processes={name: (servers.cpu_seconds(pid) - self._cpu[name]) / wall for name, pid in self.pids.items()},
        )


def cluster_pids(started: Cluster) -> dict[str, int]:
    """The cluster's processes on the server core (nodes still running, Traefik)."""
    services = (*started.nodes.values(), started.traefik)
    return {
        service.name: service.pid
        for service in services
        if service is not None and service.pid is not None and service.running
    }


def node_for_cookie(started: Cluster, cookie: str) -> str:
    """Traefik's sticky cookie value is the first 16 hex digits of SHA-256 of the node's URL."""
    value = cookie.partition("=")[2]
    for name in started.node_names:
        if hashlib.sha256(started.node_url(name).encode()).hexdigest()[:16] == value:
            return name
    raise RuntimeError(f"the sticky cookie {cookie!r} names none of {started.node_names}")


def plain_http_config(
    started: Cluster, port: int, directory: Path, sticky_port: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cluster's own Traefik configuration with TLS taken off, listening on `port`: (static, dynamic).

    Everything else (routers, sticky cookie, health checks, timeouts, access
    log) is what deploy/traefik_config.py makes; the entrypoint keeps its name
    because the routers refer to it. No dashboard and no metrics entrypoint:
    the cluster's Traefik has both.
    With `sticky_port`, a second entrypoint there gets copies of every router
    but the per-node header routers (ADR 8): the routing before them, /mcp by
    the sticky cookie alone, in the same process and to the same services.
    """
    setup = dataclasses.replace(
        started.traefik_setup(),
        https_address=f"{servers.LOOPBACK}:{port}",
        dynamic_file=str(directory / "dynamic.yml"),
        api_address=None,
        metrics_address=None,
        access_log_file=str(directory / "access.log"),
    )
    static = traefik_config.static_config(setup)
    del static["entryPoints"][traefik_config.ENTRYPOINT]["http"]["tls"]
    dynamic = traefik_config.dynamic_config(setup)
    del dynamic["tls"]
    routers = dynamic["http"]["routers"]
    for router in routers.values():
        del router["tls"]
    if sticky_port is not None:
        entry_points = static["entryPoints"]
        entry_points[STICKY_ENTRYPOINT] = {
            **entry_points[traefik_config.ENTRYPOINT],
            "address": f"{servers.LOOPBACK}:{sticky_port}",
        }
        header_routers = {traefik_config.session_router_name(node) for node in started.traefik_setup().nodes}
        for name, router in list(routers.items()):
            if name not in header_routers:
                routers[f"{name}{STICKY_SUFFIX}"] = {**router, "entryPoints": [STICKY_ENTRYPOINT]}
    return static, dynamic


@dataclass(frozen=True)
class PlainTraefik:
    process: servers.ServerProcess
    sticky_port: int  # the entrypoint with the sticky-cookie router alone
    access_log: Path


@contextlib.asynccontextmanager
async def plain_traefik(started: Cluster, log_dir: Path) -> AsyncIterator[PlainTraefik]:
    """The bench-only plain-HTTP Traefik in front of the same nodes, on the server core."""
    port = servers.free_port()
    sticky_port = servers.free_port()
    while sticky_port == port:
        sticky_port = servers.free_port()
    directory = log_dir / "traefik-plain"
    directory.mkdir(parents=True, exist_ok=True)
    static, dynamic = plain_http_config(started, port, directory, sticky_port)
    (directory / "traefik.yml").write_text(yaml.safe_dump(static, sort_keys=False))
    (directory / "dynamic.yml").write_text(yaml.safe_dump(dynamic, sort_keys=False))
    argv = [str(traefik_binary()), f"--configFile={directory / 'traefik.yml'}"]
    process = servers.ServerProcess(
        "traefik-plain", argv, dict(os.environ), log_dir / f"traefik-plain-{port}.log", port
    )
    with process:
        await _wait_until_routing(port)
        await _wait_until_routing(sticky_port)
        yield PlainTraefik(process, sticky_port, directory / "access.log")


async def _wait_until_routing(port: int, within: float = 15.0) -> None:
    """Listening is not routing yet: wait until /healthz comes back from a node through it."""
    probe = render_request("GET", "/healthz", f"{servers.LOOPBACK}:{port}", {})
    deadline = time.monotonic() + within
    while True:
        connection = Connection(servers.LOOPBACK, port)
        try:
            if (await connection.request(probe)).status == 200:
                return
        except (OSError, EOFError):
            pass  # not accepting yet, or closed on us while starting
        finally:
            await connection.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the plain-HTTP Traefik on {port} routed nothing within {within:g} s")
        await asyncio.sleep(0.1)


# --- the measurement -----------------------------------------------------------------


async def measure(started: Cluster, plan: Plan, log_dir: Path) -> ProxyCost:
    tls = started.ssl_context()
    https_port = started.config.https_port
    # Every path gets the bytes a client of the proxy sends: the proxy's Host (Traefik passes it through).
    host = f"{servers.LOOPBACK}:{https_port}"
    opener = Connection(servers.LOOPBACK, https_port, tls)
    try:
        session_id, cookie = await open_sticky_session(opener, host)
    finally:
        await opener.close()
    node = node_for_cookie(started, cookie)
    with_cookie, without_cookie = handshake_call(host, session_id, cookie), handshake_call(host, session_id)
    assert started.traefik is not None
    async with plain_traefik(started, log_dir) as plain:
        targets: dict[str, tuple[int, ssl.SSLContext | None]] = {
            "direct": (started.config.node_ports[started.node_names.index(node)], None),
            "traefik-http": (plain.process.port, None),
            "traefik-http-sticky": (plain.sticky_port, None),
            "traefik-https": (https_port, tls),
            "traefik-https-header": (https_port, tls),
        }

        async def run(path: str, total: int, concurrency: int) -> RunStats:
            port, context = targets[path]
            factory = without_cookie if path == "traefik-https-header" else with_cookie
            return await run_load(servers.LOOPBACK, port, factory, total, concurrency, ssl=context)

        for path in PATHS:
            await run(path, plan.warmup, max(CONCURRENCIES))
        logs = {"cluster": started.access_log_path, "bench-only": plain.access_log}
        offsets = {name: _size(log) for name, log in logs.items()}
        meter = CpuMeter({**cluster_pids(started), "traefik (plain HTTP)": plain.process.pid})
        rows = []
        size = max(1, plan.requests // SLICES_PER_ROUND)
        for concurrency in CONCURRENCIES:
            runs: dict[str, list[RunStats]] = {path: [] for path in PATHS}
            # Short slices, the paths taking turns: a load that comes and goes on the
            # machine then lands on every path alike.
            for number in range(plan.rounds * SLICES_PER_ROUND):
                shift = number % len(PATHS)  # who goes first rotates too
                for path in PATHS[shift:] + PATHS[:shift]:
                    runs[path].append(await run(path, size, concurrency))
            rows += [
                PathRow(path, concurrency, RunStats.combine(runs[path]), [run.median_ms for run in runs[path]])
                for path in PATHS
            ]
        cpu = meter.read()
        # Traefik writes an entry once the answer is done: the last ones are there by now.
        routers = {name: _routers_logged(log, offsets[name]) for name, log in logs.items()}
    return ProxyCost(
        node=node,
        rows=rows,
        plan=plan,
        slice_size=size,
        pinned=servers.pinning_available(),
        tls=await _negotiated(https_port, tls),
        cpu=cpu,
        routers={
            f"{name} Traefik, entrypoint {entrypoint}": count
            for name, by_entrypoint in routers.items()
            for entrypoint, count in sorted(by_entrypoint.items())
        },
    )


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def mcp_access_log(log: Path, offset: int) -> Iterator[dict[str, Any]]:
    """The /mcp entries of a Traefik JSON access log, from byte `offset` on."""
    if not log.exists():
        return
    with log.open(errors="replace") as lines:
        lines.seek(offset)
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line being written as we read
            if str(entry.get("RequestPath", "")).startswith("/mcp"):
                yield entry


def _routers_logged(log: Path, offset: int) -> dict[str, Counter[str]]:
    """/mcp requests in a Traefik JSON access log from `offset` on: routers counted by entrypoint."""
    found: dict[str, Counter[str]] = {}
    for entry in mcp_access_log(log, offset):
        entrypoint = str(entry.get("entryPointName") or entry.get("EntryPointName") or "?")
        router = str(entry.get("RouterName", "?")).removesuffix("@file")
        found.setdefault(entrypoint, Counter())[router] += 1
    return found


async def _negotiated(port: int, context: ssl.SSLContext) -> str:
    _, writer = await asyncio.open_connection(servers.LOOPBACK, port, ssl=context)
    try:
        connection = writer.get_extra_info("ssl_object")
        return f"{connection.version()} {connection.cipher()[0]}, ALPN {connection.selected_alpn_protocol() or 'none'}"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
