"""Scenario 9: a rolling restart of the cluster under handshake sessions whose clients keep no cookies.

The clients are scenario 6's (bench/failover.py): one keep-alive HTTPS
connection to Traefik each, one session each, a `tools/call` once per period
at a spread phase; on a 5xx or a transport error they try again at their next
turn, on 404 they initialize again (with adoption that should never happen).
They keep no cookies, so every request finds its node by the session id alone
(ADR 8).

After a steady spell the nodes restart one at a time, as a deploy does it:
SIGTERM (the node drains and hands its sessions off, ADR 9), wait for the
process to exit, start it again on the server core, and wait until Traefik's
API counts it up in the pools and in its own service; then the next node.

Every request's outcome is kept with the times it was sent and answered. A
failed request counts as *in flight at a stop* when it was sent before a node
exited and ended after that node's SIGTERM. Traefik's access log adds its own
view: each 5xx it answered, the node it had sent the request to, and whether
that node was stopping then. Per client, the longest time without an answer
is the longest span between two of its answered calls, from its last answer
before the first SIGTERM to the end of the watch; the pace alone makes it
about one period.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deploy.cluster import Cluster

from .failover import Client, failure_kind, paced_clients, revive
from .load import percentile
from .proxy import CpuMeter, mcp_access_log

# Node log lines of ADR 9's two moves (sessions_app/session/manager.py).
HANDED_OFF = re.compile(r"Handed off (\d+) MCP sessions")
ADOPTED = re.compile(r"Adopted MCP session \S+ from node ")


@dataclass(frozen=True)
class Plan:
    sessions: int  # clients, each with its own connection and session, no cookies
    period: float  # seconds between one client's calls
    before: float  # seconds of steady pace before the first SIGTERM
    after: float  # seconds watched once the last node is routed to again


@dataclass(frozen=True)
class Restart:
    """One node's turn, in seconds since the first SIGTERM."""

    node: str
    sigterm: float
    exited: float
    routed: float  # Traefik's API counts its new life up everywhere
    exit_code: int | None
    handed_off: int | None  # sessions its log says it handed off (None: no such line)
    wall_sigterm: float  # time.time() at the SIGTERM and the exit, to read Traefik's log by
    wall_exited: float


@dataclass
class ClientRun:
    failures: Counter[str]  # from the first SIGTERM on, by kind: "5xx", "transport", "404", "other"
    in_flight: int  # of them, sent before a node exited and ended after its SIGTERM
    reinitialized: int  # `initialize` requests sent from the first SIGTERM on
    longest_silence: float  # seconds: the longest span without an answered call

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


@dataclass
class Rolling:
    plan: Plan
    restarts: list[Restart]
    clients: list[ClientRun]
    failed_before: int  # failed requests during the steady spell: should be zero
    statuses: Counter[int]  # every failed answer from the first SIGTERM on, by status (0: none came)
    # Traefik's 5xx answers from the first SIGTERM on: (node it sent the request to, or "-", in flight at its stop).
    traefik_5xx: list[tuple[str, bool]]
    adoptions: int  # "Adopted MCP session" lines the nodes logged during the run
    core_busy_before: float
    core_busy_during: float
    harness_busy: float  # the harness's share of the client core during the steady spell
    observed: float  # seconds from the first SIGTERM to the end of the watch
    # Each failed request: (sent, ended, kind), seconds since the first SIGTERM, in the order sent.
    failures: list[tuple[float, float, str]] = field(default_factory=list)
    latencies_before: list[float] = field(default_factory=list, repr=False)  # tools/call, seconds
    latencies_during: list[float] = field(default_factory=list, repr=False)

    def kind_total(self, kind: str) -> int:
        return sum(run.failures[kind] for run in self.clients)

    @property
    def failed(self) -> int:
        return sum(run.failed for run in self.clients)

    @property
    def in_flight(self) -> int:
        return sum(run.in_flight for run in self.clients)

    @property
    def not_in_flight(self) -> int:
        return self.failed - self.in_flight

    @property
    def reinitializations(self) -> int:
        return sum(run.reinitialized for run in self.clients)

    @property
    def silences(self) -> list[float]:
        return sorted(run.longest_silence for run in self.clients)

    def silence_percentile(self, fraction: float) -> float:
        return percentile(self.silences, fraction)

    @property
    def errors(self) -> int:
        """What a rolling restart with hand-off should never cause: failures before it, or not in flight."""
        return self.failed_before + self.not_in_flight


async def measure(started: Cluster, plan: Plan) -> Rolling:
    """Steady pace, restart every node in turn, watch `after` seconds more."""
    async with paced_clients(started, plan.sessions, plan.period, keep_cookies=False) as clients:
        return await _restart_and_watch(started, clients, plan)


async def _restart_and_watch(started: Cluster, clients: list[Client], plan: Plan) -> Rolling:
    await asyncio.sleep(plan.period)  # every client through its first turn
    steady, meter, harness_start = time.monotonic(), CpuMeter(), time.process_time()
    await asyncio.sleep(plan.before)
    core_before = meter.read().core
    harness = (time.process_time() - harness_start) / plan.before
    adopted_before = _count(started, ADOPTED)
    handed_before = {name: len(HANDED_OFF.findall(started.node_log(name))) for name in started.node_names}
    assert started.traefik is not None
    access_log = started.access_log_path
    log_offset = access_log.stat().st_size if access_log.exists() else 0

    began, during = time.monotonic(), CpuMeter()
    restarts = []
    for name in started.node_names:
        wall_sigterm, sigterm = time.time(), time.monotonic() - began
        code = await asyncio.to_thread(started.stop_node, name)
        wall_exited, exited = time.time(), time.monotonic() - began
        lines = HANDED_OFF.findall(started.node_log(name))[handed_before[name] :]
        await revive(started, name)
        restarts.append(
            Restart(
                node=name,
                sigterm=sigterm,
                exited=exited,
                routed=time.monotonic() - began,
                exit_code=code,
                handed_off=int(lines[-1]) if lines else None,
                wall_sigterm=wall_sigterm,
                wall_exited=wall_exited,
            )
        )
    await asyncio.sleep(plan.after)
    ended = time.monotonic()
    core_during = during.read().core
    stops = [(began + r.sigterm, began + r.exited) for r in restarts]

    runs, latencies_before, latencies_during = [], [], []
    statuses: Counter[int] = Counter()
    failed_before = 0
    detail: list[tuple[float, float, str]] = []
    for client in clients:
        failed_before += sum(1 for a in client.attempts if steady <= a.at < began and not a.ok)
        failed = [a for a in client.attempts if a.at >= began and not a.ok]
        statuses.update(a.status for a in failed)
        detail += [(a.at - a.latency - began, a.at - began, failure_kind(a.status)) for a in failed]
        calls = [a for a in client.attempts if a.what == "call" and a.ok]
        latencies_before += [a.latency for a in calls if steady <= a.at < began]
        latencies_during += [a.latency for a in calls if began <= a.at <= ended]
        answered = [a.at for a in calls if a.at <= ended]
        last_before = max((at for at in answered if at < began), default=began)
        marks = [last_before, *(at for at in answered if at >= began), ended]
        runs.append(
            ClientRun(
                failures=Counter(failure_kind(a.status) for a in failed),
                in_flight=sum(1 for a in failed if any(a.at - a.latency < out and a.at >= term for term, out in stops)),
                reinitialized=sum(1 for a in client.attempts if a.what == "initialize" and a.at - a.latency >= began),
                longest_silence=max(later - earlier for earlier, later in itertools.pairwise(marks)),
            )
        )
    return Rolling(
        plan=plan,
        restarts=restarts,
        clients=runs,
        failed_before=failed_before,
        statuses=statuses,
        traefik_5xx=_traefik_5xx(started, access_log, log_offset, restarts),
        adoptions=max(0, _count(started, ADOPTED) - adopted_before),
        core_busy_before=core_before,
        core_busy_during=core_during,
        harness_busy=harness,
        observed=ended - began,
        failures=sorted(detail),
        latencies_before=latencies_before,
        latencies_during=latencies_during,
    )


def _count(started: Cluster, pattern: re.Pattern[str]) -> int:
    return sum(len(pattern.findall(started.node_log(name))) for name in started.node_names)


def _traefik_5xx(started: Cluster, log: Path, offset: int, restarts: list[Restart]) -> list[tuple[str, bool]]:
    """Traefik's 5xx answers to /mcp in its access log from `offset` on: (node sent to, in flight at its stop)."""
    by_address = {started.node_url(name).removeprefix("http://"): name for name in started.node_names}
    windows = {r.node: (r.wall_sigterm, r.wall_exited) for r in restarts}
    found = []
    for entry in mcp_access_log(log, offset):
        if int(entry.get("DownstreamStatus") or 0) < 500:
            continue
        node = by_address.get(str(entry.get("ServiceAddr", "")), "-")
        start = _wall(str(entry.get("StartUTC", "")))
        window = windows.get(node)
        found.append((node, window is not None and start is not None and start < window[1]))
    return found


def _wall(stamp: str) -> float | None:
    """Traefik's StartUTC (RFC 3339, nanoseconds) as a time.time() value."""
    if not stamp:
        return None
    head, _, rest = stamp.partition(".")
    fraction = "0." + "".join(ch for ch in rest if ch.isdigit())[:6] if rest else "0"
    try:
        moment = datetime.datetime.fromisoformat(head.removesuffix("Z")).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return moment.timestamp() + float(fraction)
