"""Scenarios 1 and 2: tools/call throughput and latency, ours beside the reference, alternating.

For each answer mode (JSON bodies, SSE streams) one node of ours and one
reference server run side by side; every row is measured in rounds that
alternate between them, so a noisy neighbour hurts both alike.
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
    reference: RunStats

    @property
    def ratio(self) -> float:
        return self.ours.throughput / self.reference.throughput if self.reference.throughput else 0.0


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
    ):
        ours, reference = Target(ours_process), Target(reference_process)
        for target in (ours, reference):
            await target.prepare()
            for era in ERAS:
                await target.run(era, plan.warmup, max(CONCURRENCIES))
        rows = []
        for era in ERAS:
            for concurrency in CONCURRENCIES:
                our_runs: list[RunStats] = []
                reference_runs: list[RunStats] = []
                for round_number in range(plan.rounds):
                    # Alternate which side goes first, so neither always runs on a warmer machine.
                    order = (ours, reference) if round_number % 2 == 0 else (reference, ours)
                    for target in order:
                        stats = await target.run(era, plan.requests, concurrency)
                        (our_runs if target is ours else reference_runs).append(stats)
                rows.append(Row(era, mode, concurrency, RunStats.combine(our_runs), RunStats.combine(reference_runs)))
        return rows


async def measure(plan: Plan, log_dir: Path) -> list[Row]:
    rows = []
    for mode in MODES:
        rows += await measure_mode(mode, plan, log_dir)
    return rows
