"""Scenarios 1 and 2: tools/call throughput and latency, ours beside the reference, alternating.

For each answer mode (JSON bodies, SSE streams) four servers run side by
side: our node; the reference (the SDK's own app) under uvicorn; the floor of
our stack (bench/floor_app.py: a bare consumer answering fixed bytes under our
production server); and the reference app under our production server. Every
row is measured in rounds that take turns between them, the order rotating
each round, so a noisy neighbour hurts all alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import servers
from .load import RunStats, run_load
from .messages import RequestFactory, handshake_call, modern_call, open_session
from .rawhttp import Connection

ERAS = ("handshake", "modern")
CONCURRENCIES = (1, 32)
MODES = ("json", "sse")


@dataclass(frozen=True)
class Plan:
    requests: int  # measured per run
    warmup: int  # per server, before the first round
    rounds: int  # alternating runs per server and row


@dataclass
class Row:
    era: str  # "handshake" (scenario 1) or "modern" (scenario 2)
    mode: str  # "json" or "sse"
    concurrency: int
    ours: RunStats
    reference: RunStats  # the SDK's app under uvicorn
    floor: RunStats  # fixed bytes under our server: the most this stack can do
    reference_daphne: RunStats  # the SDK's app under our server

    @property
    def ratio(self) -> float:
        return _ratio(self.ours, self.reference)

    @property
    def of_floor(self) -> float:
        return _ratio(self.ours, self.floor)

    @property
    def floor_ratio(self) -> float:
        """The floor against the reference on uvicorn: below 1, no application on our stack can reach it."""
        return _ratio(self.floor, self.reference)

    @property
    def ratio_same_server(self) -> float:
        """Ours against the reference app under the same server: application against application."""
        return _ratio(self.ours, self.reference_daphne)


def _ratio(one: RunStats, other: RunStats) -> float:
    return one.throughput / other.throughput if other.throughput else 0.0


class Target:
    """One running server and how to send it a tools/call in each era."""

    def __init__(self, process: servers.ServerProcess) -> None:
        self.process = process
        self.host = f"{servers.LOOPBACK}:{process.port}"
        self.factories: dict[str, RequestFactory] = {}

    async def prepare(self) -> None:
        connection = Connection(servers.LOOPBACK, self.process.port)
        try:
            session_id = await open_session(connection, self.host)
        finally:
            await connection.close()
        self.factories = {"handshake": handshake_call(self.host, session_id), "modern": modern_call(self.host)}

    async def run(self, era: str, total: int, concurrency: int) -> RunStats:
        cpu_before = servers.cpu_seconds(self.process.pid)
        stats = await run_load(servers.LOOPBACK, self.process.port, self.factories[era], total, concurrency)
        stats.server_cpu = servers.cpu_seconds(self.process.pid) - cpu_before
        return stats


async def measure_mode(mode: str, plan: Plan, log_dir: Path) -> list[Row]:
    json_response = mode == "json"
    with (
        servers.our_node(log_dir, json_response=json_response) as ours_process,
        servers.reference(log_dir, json_response=json_response) as reference_process,
        servers.floor(log_dir, json_response=json_response) as floor_process,
        servers.reference_under_daphne(log_dir, json_response=json_response) as reference_daphne_process,
    ):
        targets = [
            Target(process) for process in (ours_process, reference_process, floor_process, reference_daphne_process)
        ]
        for target in targets:
            await target.prepare()
            for era in ERAS:
                await target.run(era, plan.warmup, max(CONCURRENCIES))
        rows = []
        for era in ERAS:
            for concurrency in CONCURRENCIES:
                runs: list[list[RunStats]] = [[] for _ in targets]
                for round_number in range(plan.rounds):
                    # Rotate who goes first, so no server always runs on a warmer (or busier) machine.
                    for index in _rotated(len(targets), round_number):
                        runs[index].append(await targets[index].run(era, plan.requests, concurrency))
                ours, reference, floor, reference_daphne = (RunStats.combine(each) for each in runs)
                rows.append(Row(era, mode, concurrency, ours, reference, floor, reference_daphne))
        return rows


def _rotated(count: int, shift: int) -> list[int]:
    return [(index + shift) % count for index in range(count)]


async def measure(plan: Plan, log_dir: Path) -> list[Row]:
    rows = []
    for mode in MODES:
        rows += await measure_mode(mode, plan, log_dir)
    return rows
