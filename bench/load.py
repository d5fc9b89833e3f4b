"""Drive N keep-alive connections through a fixed number of requests and time each one."""

from __future__ import annotations

import asyncio
import itertools
import math
import ssl as ssl_module
import statistics
import time
from dataclasses import dataclass, field

from .messages import EXPECTED_IN_ANSWER, RequestFactory
from .rawhttp import Connection


def percentile(values: list[float], fraction: float) -> float:
    """The value at `fraction` (0.5: the median) of `values`, in their unit; NaN for none."""
    if not values:
        return float("nan")
    if fraction == 0.5:
        return statistics.median(values)
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def sign_test(differences: list[float]) -> float:
    """Two-sided sign test: how likely paired differences this one-sided are if neither side is faster.

    Ties (zero) are dropped. 1.0 for no pairs.
    """
    above = sum(1 for value in differences if value > 0)
    below = sum(1 for value in differences if value < 0)
    pairs = above + below
    if not pairs:
        return 1.0
    extreme = max(above, below)
    tail: float = sum(math.comb(pairs, count) for count in range(extreme, pairs + 1)) / (1 << pairs)
    return min(1.0, 2 * tail)


@dataclass
class RunStats:
    requests: int
    seconds: float
    latencies: list[float] = field(repr=False)  # seconds, one per request
    errors: int = 0
    content_types: set[str] = field(default_factory=set)
    first_error: str = ""
    client_cpu: float = 0.0  # seconds of this process's CPU: what the load generator itself cost
    server_cpu: float = 0.0  # seconds of the server process's CPU over the run, when measured

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def median_ms(self) -> float:
        return percentile(self.latencies, 0.5) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    @classmethod
    def combine(cls, runs: list[RunStats]) -> RunStats:
        """Rounds taken apart (alternating with the other server) pooled into one row."""
        return cls(
            requests=sum(run.requests for run in runs),
            seconds=sum(run.seconds for run in runs),
            latencies=[latency for run in runs for latency in run.latencies],
            errors=sum(run.errors for run in runs),
            content_types=set().union(*(run.content_types for run in runs)),
            first_error=next((run.first_error for run in runs if run.first_error), ""),
            client_cpu=sum(run.client_cpu for run in runs),
            server_cpu=sum(run.server_cpu for run in runs),
        )

    @property
    def server_cpu_us(self) -> float:
        """The server's CPU per request, in microseconds."""
        return self.server_cpu / self.requests * 1e6 if self.requests else 0.0


async def run_load(
    host: str,
    port: int,
    factory: RequestFactory,
    total: int,
    concurrency: int,
    ssl: ssl_module.SSLContext | None = None,
) -> RunStats:
    """`total` requests over `concurrency` connections (HTTPS with `ssl`), each sending its next request when answered.

    Connections are opened before the clock starts (a TLS handshake is not a request's cost).
    """
    ids = itertools.count(1)
    remaining = iter(range(total))
    latencies: list[float] = []
    stats = RunStats(requests=total, seconds=0.0, latencies=latencies)

    async def worker(connection: Connection) -> None:
        try:
            for _ in remaining:
                raw = factory(next(ids))
                started = time.perf_counter()
                response = await connection.request(raw)
                latencies.append(time.perf_counter() - started)
                stats.content_types.add(response.headers.get(b"content-type", b"").decode().split(";")[0])
                if response.status != 200 or EXPECTED_IN_ANSWER not in response.body:
                    stats.errors += 1
                    stats.first_error = stats.first_error or f"HTTP {response.status}: {response.body[:200]!r}"
        finally:
            await connection.close()

    connections = [Connection(host, port, ssl) for _ in range(concurrency)]
    await asyncio.gather(*(connection.connect() for connection in connections))
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(connection) for connection in connections))
    stats.seconds = time.perf_counter() - started
    stats.client_cpu = time.process_time() - cpu_started
    return stats
