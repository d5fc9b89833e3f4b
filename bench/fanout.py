"""Scenario 11: fan-out under a change flood: does delivering one change to many subscribers stall other calls?

Nodes A and B as in scenario 5 (bench/notify.py), on SQLite. On node A, `subscribers`
handshake-era sessions each subscribe to adr://1 and hold their standalone GET
stream open; background readers drain every stream and count the
`notifications/resources/updated` events in it. An unrelated client on its own
session on node A calls `read_decision` (number 1) in a loop, one call at a time,
and each call is timed in three phases: while another task sends `editDecision`
mutations to node B's /graphql back to back before any subscriber exists (the
control: what the flood costs the call by itself, node B sharing the server
core), then with the subscribers and no changes (the baseline), then with the
subscribers under the flood. Every change then makes node A send one
notification to each subscriber.

The readers count raw bytes rather than parse events: under the flood the client
reads thousands of events a second, and parsing them would slow the timed calls on
the harness's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import servers
from .eventstream import EventStream, standalone_get
from .load import percentile
from .messages import EXPECTED_IN_ANSWER, RequestFactory, open_session, session_headers
from .notify import change_made, change_request, decision_nodes, subscribe
from .rawhttp import Connection, render_request

UPDATE_MARKER = b'"method":"notifications/resources/updated"'
OPEN_CONCURRENCY = 10
# After the flood, how long the counts may stand still before the missing events count as lost.
SETTLE_SECONDS = 5.0
# After the control, before anyone subscribes: node A has heard of the control's last change by then.
CONTROL_SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Plan:
    subscribers: int
    calls: int  # timed calls per phase
    warmup: int


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, one per call
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0
    # CPU seconds each node used over the phase: how busy the server core was.
    node_a_cpu: float = 0.0
    node_b_cpu: float = 0.0

    def core_share(self, cpu: float) -> float:
        """`cpu` as a share of one core over the phase's wall time."""
        return cpu / self.seconds if self.seconds else float("nan")

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 0.5) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000


@dataclass
class Flood:
    """What the flood's mutations did."""

    changes: int = 0  # mutations answered as made
    failed: int = 0
    first_error: str = ""


@dataclass
class FanOut:
    plan: Plan
    control: Phase  # under the flood, with no subscriber
    baseline: Phase
    flood: Phase
    control_changes: int = 0
    changes: int = 0  # mutations answered as made during the flood
    failed_changes: int = 0
    received: list[int] = field(default_factory=list, repr=False)  # updates read per subscriber stream
    # Subscribers that read no update after the last change: told nothing of the record's final state.
    stale: int = 0
    first_error: str = ""

    @property
    def merged(self) -> int:
        """Updates not sent because they were merged with a later one for the same record (per subscriber)."""
        return sum(max(0, self.changes + 1 - count) for count in self.received)

    @property
    def errors(self) -> int:
        return self.control.errors + self.baseline.errors + self.flood.errors + self.failed_changes + self.stale


async def measure(log_dir: Path, plan: Plan) -> FanOut:
    async with decision_nodes(log_dir, "fanout", database="sqlite") as (node_a, node_b):
        return await _measure(node_a, node_b, plan)


class _Counter:
    """Drains one subscriber's stream and counts the update events in it."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.count = 0

    async def run(self) -> None:
        tail = b""
        with contextlib.suppress(EOFError, OSError):
            while True:
                data = tail + await self.stream.read_raw()
                self.count += data.count(UPDATE_MARKER)
                # Too short to hold a whole marker, so one split between two reads is counted once.
                tail = data[-(len(UPDATE_MARKER) - 1) :]


async def _measure(node_a: servers.ServerProcess, node_b: servers.ServerProcess, plan: Plan) -> FanOut:
    host_a = f"{servers.LOOPBACK}:{node_a.port}"
    counters: list[_Counter] = []
    readers: list[asyncio.Task[None]] = []
    caller = Connection(servers.LOOPBACK, node_a.port)
    result = FanOut(plan, Phase(), Phase(), Phase())
    try:
        call, ids = _read_decision(host_a, await open_session(caller, host_a)), itertools.count(2)
        await _calls(caller, call, ids, plan.warmup)
        result.control, control = await _under_flood(node_a, node_b, caller, call, ids, plan.calls)
        result.control_changes = control.changes
        result.failed_changes += control.failed
        result.first_error = control.first_error
        await asyncio.sleep(CONTROL_SETTLE_SECONDS)
        await _open_subscribers(node_a.port, host_a, counters, plan.subscribers)
        loop = asyncio.get_running_loop()
        readers = [loop.create_task(counter.run()) for counter in counters]
        await _calls(caller, call, ids, plan.warmup)
        with _cpu_of(node_a, node_b) as result.baseline:
            await _calls(caller, call, ids, plan.calls, result.baseline)
        # The control's changes were made before anyone subscribed.
        if any(counter.count for counter in counters):
            raise RuntimeError("updates arrived before any change was made")
        result.flood, flood = await _under_flood(node_a, node_b, caller, call, ids, plan.calls)
        result.changes = flood.changes
        result.failed_changes += flood.failed
        result.first_error = result.first_error or flood.first_error
        await _settled(counters, result.changes)
        # One more change once everything has settled: every subscriber must hear of it. Changes to
        # one record made while earlier ones are still being delivered are merged into one update
        # (sessions_app/cluster/change_feed.py), so the flood's own counts may be lower; this is the
        # check that nobody was left with a stale record.
        before = [counter.count for counter in counters]
        last = Connection(servers.LOOPBACK, node_b.port)
        try:
            answer = await last.request(change_request(f"{servers.LOOPBACK}:{node_b.port}", 10**6))
        finally:
            await last.close()
        if not change_made(answer):
            result.failed_changes += 1
        result.received = await _settled(counters, 0, until=[count + 1 for count in before])
        result.stale = sum(1 for count, earlier in zip(result.received, before, strict=True) if count <= earlier)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(*(counter.stream.close() for counter in counters), return_exceptions=True)
        await caller.close()
    return result


async def _open_subscribers(port: int, host: str, counters: list[_Counter], count: int) -> None:
    remaining = iter(range(count))

    async def opener() -> None:
        for _ in remaining:
            connection = Connection(servers.LOOPBACK, port)
            try:
                session_id = await open_session(connection, host)
                await subscribe(connection, host, session_id)
                stream = EventStream(*connection.detach())
            except BaseException:
                await connection.close()
                raise
            try:
                await stream.start(standalone_get(host, session_id))
            except BaseException:
                await stream.close()
                raise
            counters.append(_Counter(stream))

    await asyncio.gather(*(opener() for _ in range(OPEN_CONCURRENCY)))


def _read_decision(host: str, session_id: str) -> RequestFactory:
    """`read_decision` of record 1 on the unrelated client's session."""
    headers = session_headers(session_id)

    def render(request_id: int) -> bytes:
        message = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "read_decision", "arguments": {"number": 1}},
        }
        return render_request("POST", "/mcp", host, headers, json.dumps(message).encode())

    return render


@contextlib.contextmanager
def _cpu_of(node_a: servers.ServerProcess, node_b: servers.ServerProcess) -> Iterator[Phase]:
    """A new phase, with the CPU each node used while the block ran."""
    phase = Phase()
    a_before, b_before = servers.cpu_seconds(node_a.pid), servers.cpu_seconds(node_b.pid)
    yield phase
    phase.node_a_cpu = servers.cpu_seconds(node_a.pid) - a_before
    phase.node_b_cpu = servers.cpu_seconds(node_b.pid) - b_before


async def _calls(
    connection: Connection, call: RequestFactory, ids: Iterator[int], count: int, phase: Phase | None = None
) -> Phase:
    """`count` calls one after another, each timed from send to the last byte of its answer."""
    phase = phase or Phase()
    started = time.perf_counter()
    for _ in range(count):
        raw = call(next(ids))
        sent = time.perf_counter()
        answer = await connection.request(raw)
        phase.latencies.append(time.perf_counter() - sent)
        if answer.status != 200 or EXPECTED_IN_ANSWER not in answer.body or b'"isError":true' in answer.body:
            phase.errors += 1
            phase.first_error = phase.first_error or f"HTTP {answer.status}: {answer.body[:200]!r}"
    phase.seconds = time.perf_counter() - started
    return phase


async def _under_flood(
    node_a: servers.ServerProcess,
    node_b: servers.ServerProcess,
    connection: Connection,
    call: RequestFactory,
    ids: Iterator[int],
    count: int,
) -> tuple[Phase, Flood]:
    """`count` timed calls on node A while the flood runs on node B."""
    loop = asyncio.get_running_loop()
    tally, started, stop = Flood(), asyncio.Event(), asyncio.Event()
    flood = loop.create_task(_flood(node_b.port, tally, started, stop))
    try:
        await started.wait()
        with _cpu_of(node_a, node_b) as phase:
            await _calls(connection, call, ids, count, phase)
    finally:
        stop.set()
        await flood
    return phase, tally


async def _flood(port: int, tally: Flood, started: asyncio.Event, stop: asyncio.Event) -> None:
    """`editDecision` mutations to node B, each sent when the last is answered, until `stop`.

    `started` is set once the first is answered: the timed calls begin with the flood
    under way rather than with node B's first, slower GraphQL request.
    """
    host = f"{servers.LOOPBACK}:{port}"
    connection = Connection(servers.LOOPBACK, port)
    try:
        number = 0
        while not stop.is_set():
            number += 1
            answer = await connection.request(change_request(host, number))
            if change_made(answer):
                tally.changes += 1
            else:
                tally.failed += 1
                tally.first_error = tally.first_error or f"HTTP {answer.status}: {answer.body[:200]!r}"
            started.set()
    finally:
        started.set()
        await connection.close()


async def _settled(counters: list[_Counter], changes: int, until: list[int] | None = None) -> list[int]:
    """Each stream's count once all have every change (or each its count in `until`), or once no
    count has moved for SETTLE_SECONDS."""
    total, still_since = -1, time.monotonic()
    while True:
        counts = [counter.count for counter in counters]
        targets = until if until is not None else [changes] * len(counts)
        if all(count >= target for count, target in zip(counts, targets, strict=True)):
            return counts
        if sum(counts) != total:
            total, still_since = sum(counts), time.monotonic()
        elif time.monotonic() - still_since > SETTLE_SECONDS:
            return counts
        await asyncio.sleep(0.1)
