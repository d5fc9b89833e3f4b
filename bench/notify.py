"""Scenario 5: a GraphQL mutation sent to node B until its notification is read on a stream on node A.

Two daphne nodes serve the decision log (`MCP_SERVER=graphql_app.mcp.server.server`)
from one database and share a private redis-server. The database is one migrated
SQLite file, or a private PostgreSQL (bench/postgres.py) as in production; scenario 5
measures both, one after the other, each with its own nodes and Redis. A handshake-era
session on node A subscribes to adr://1 and holds its standalone GET stream open;
a background task reads that stream and timestamps every event as it is read.
The harness then sends `editDecision` mutations to node B's /graphql one after
another (each waits for its answer and for its notification before the next).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import postgres, servers
from .eventstream import Event, EventStream, standalone_get
from .load import percentile
from .messages import open_session, session_headers
from .rawhttp import Connection, Response, render_request

URI = "adr://1"
# One document with the title as a variable, as GraphQL clients send it: the
# node validates a document once and then recognises it (graphql_app/api/limits.py).
MUTATION = "mutation Edit($title: String!) { editDecision(number: 1, input: {title: $title}) { errors { code } } }"
# How long one change may take to show up on node A before it counts as lost.
EVENT_TIMEOUT = 5.0
Database = Literal["postgresql", "sqlite"]
# In the order the report shows them.
DATABASES: dict[Database, str] = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


@dataclass
class NotifyLatency:
    database: Database
    changes: int
    latencies: list[float] = field(repr=False)  # seconds: event read on A - mutation sent to B
    round_trips: list[float] = field(repr=False)  # seconds: the mutation's own round trip on B
    lost: int = 0  # no notification within EVENT_TIMEOUT
    failed: int = 0  # the mutation itself did not succeed
    first_error: str = ""

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 0.5) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    @property
    def round_trip_p50_ms(self) -> float:
        return percentile(self.round_trips, 0.5) * 1000

    @property
    def round_trip_p99_ms(self) -> float:
        return percentile(self.round_trips, 0.99) * 1000

    @property
    def after_answer_p50_ms(self) -> float:
        """How long after the mutation's answer the event was read (negative: before it)."""
        return statistics.median(lat - rt for lat, rt in zip(self.latencies, self.round_trips, strict=False)) * 1000


def _is_update(event: Event) -> bool:
    message = event.message()
    return (
        message is not None
        and message.get("method") == "notifications/resources/updated"
        and message.get("params", {}).get("uri") == URI
    )


async def measure(log_dir: Path, database: Database, *, changes: int, warmup: int) -> NotifyLatency:
    async with decision_nodes(log_dir, f"notify_{database}", database=database) as (node_a, node_b):
        return await _measure(node_a, node_b, database, changes=changes, warmup=warmup)


@contextlib.asynccontextmanager
async def decision_nodes(
    log_dir: Path, label: str, *, database: Database
) -> AsyncIterator[tuple[servers.ServerProcess, servers.ServerProcess]]:
    """Nodes A and B serving the decision log from one database, one Redis.

    The database is a migrated SQLite file (`<label>.sqlite3`) or a database `label`
    on a private PostgreSQL, started before the nodes and stopped after them.
    """
    with servers.redis_server(log_dir) as redis, _database_env(log_dir, label, database) as database_env:
        redis_url = f"redis://{servers.LOOPBACK}:{redis.port}/0"
        shared = {**database_env, "REDIS_URL": redis_url}
        nodes = [
            servers.our_node(
                log_dir,
                json_response=False,
                redis_url=redis_url,
                mcp_server=servers.DECISION_SERVER,
                extra_env=shared,
                name=name,
            )
            for name in ("node-a", "node-b")
        ]
        try:
            for node in nodes:  # both start at once: daphne takes a second or two to import Django
                node.launch()
            # Meanwhile (on the harness's core), as an operator would before sending traffic:
            prepare = servers.node_env(MCP_SERVER=servers.DECISION_SERVER, **shared)
            servers.manage(prepare, "migrate", "--noinput")
            servers.manage(prepare, "load_demo_decisions")
            node_a, node_b = (node.wait_listening() for node in nodes)
            yield node_a, node_b
        finally:
            for node in nodes:
                node.stop()


@contextlib.contextmanager
def _database_env(log_dir: Path, label: str, database: Database) -> Iterator[dict[str, str]]:
    """The environment that points a node, and `manage.py` run for it, at the database."""
    if database == "sqlite":
        yield {"DJANGO_SQLITE_PATH": str(log_dir / f"{label}.sqlite3")}
        return
    with postgres.private_postgres(log_dir, label) as url:
        yield {"DATABASE_URL": url}


async def subscribe(connection: Connection, host: str, session_id: str) -> None:
    """`resources/subscribe` to adr://1 on an open handshake-era session."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": URI}}
    answer = await connection.request(
        render_request("POST", "/mcp", host, session_headers(session_id), json.dumps(message).encode())
    )
    if answer.status != 200 or b'"result"' not in answer.body:
        raise RuntimeError(f"resources/subscribe: HTTP {answer.status}: {answer.body[:300]!r}")


def change_request(host: str, number: int) -> bytes:
    """An `editDecision` mutation of adr://1 on /graphql, its title numbered so every one is a change."""
    title = f"Pin handshake sessions to one node, change {number}"
    body = json.dumps({"query": MUTATION, "operationName": "Edit", "variables": {"title": title}})
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    return render_request("POST", "/graphql", host, headers, body.encode())


def change_made(answer: Response) -> bool:
    return answer.status == 200 and b'"errors":[]' in answer.body.replace(b" ", b"")


async def _measure(
    node_a: servers.ServerProcess, node_b: servers.ServerProcess, database: Database, *, changes: int, warmup: int
) -> NotifyLatency:
    host_a = f"{servers.LOOPBACK}:{node_a.port}"
    host_b = f"{servers.LOOPBACK}:{node_b.port}"
    control = Connection(servers.LOOPBACK, node_a.port)
    session_id = await open_session(control, host_a)
    await subscribe(control, host_a, session_id)
    stream = await EventStream.open(servers.LOOPBACK, node_a.port, standalone_get(host_a, session_id))
    updates: asyncio.Queue[Event] = asyncio.Queue()

    async def read_stream() -> None:
        with contextlib.suppress(EOFError, OSError, asyncio.IncompleteReadError):
            while True:
                event = await stream.next_event()
                if _is_update(event):
                    updates.put_nowait(event)

    reader = asyncio.get_running_loop().create_task(read_stream())
    mutations = Connection(servers.LOOPBACK, node_b.port)
    result = NotifyLatency(database=database, changes=changes, latencies=[], round_trips=[])
    try:
        for number in range(warmup + changes):
            while not updates.empty():  # a late event of a change already counted as lost
                updates.get_nowait()
            raw = change_request(host_b, number)
            sent = time.perf_counter()
            answer = await mutations.request(raw)
            round_trip = time.perf_counter() - sent
            ok = change_made(answer)
            try:
                event = await asyncio.wait_for(updates.get(), EVENT_TIMEOUT)
            except TimeoutError:
                event = None
            if number < warmup:
                continue
            if not ok:
                result.failed += 1
                result.first_error = result.first_error or f"HTTP {answer.status}: {answer.body[:200]!r}"
            if event is None:
                result.lost += 1
                continue
            result.latencies.append(event.arrived - sent)
            result.round_trips.append(round_trip)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await stream.close()
        await mutations.close()
        await control.close()
    return result
