"""Scenario 6: failover: handshake sessions spread over the cluster through Traefik, SIGKILL one node.

Each client is one keep-alive HTTPS connection to the cluster's Traefik with
its own sticky cookie (unless it keeps none) and its own session, and calls `tools/call` once per
period at a fixed phase (the clients' phases are spread evenly over the period).
What a client does when a request fails is what the spec asks and a real
client does:

- a 5xx (a 502 that Traefik's mcp-retry could not replay) or a transport
  error (reset, timeout): give up this tick and try the same session again at
  the next one;
- 404 for its session: the session is gone; initialize again at once (the
  answer's Set-Cookie, if any, re-pins it), send `notifications/initialized`,
  then the call.

With adoption (ADR 9) the next request for a session whose node died reaches
a live node, which adopts the session and answers: no 404, and no client
initializes again. A 404, and the re-initialization it sets off, is counted
as a failure of that promise, not as the way back.

Every request's outcome is kept with its time; the numbers are worked out
after the run, relative to the moment the SIGKILL was sent.

The scenario runs twice: once with clients that send back the sticky cookie,
once with clients that keep no cookies (Node's `fetch`, the MCP Inspector,
and others: ADR 8). Either way a request carrying a session id reaches its
node by the node's header router (the id names the node); the cookie still
matters to `initialize`, which the sticky router places. A client's node is
the one its session id names. After a run every client ends its session
(DELETE), so the next run starts from nodes holding none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from deploy import traefik_config
from deploy.cluster import Cluster
from sessions_app.cluster.routing import route_of

from . import servers
from .load import percentile
from .messages import (
    EXPECTED_IN_ANSWER,
    cookie_after,
    handshake_call,
    initialize_request,
    initialized_request,
    session_headers,
)
from .proxy import CpuMeter, CpuUse, cluster_pids, move_to_server_core, node_for_cookie
from .rawhttp import Connection, Response, render_request

# A request not answered within this long counts as a transport failure.
REQUEST_TIMEOUT = 10.0
# Ending the sessions after a run: how long one DELETE may take.
CLOSE_TIMEOUT = 5.0
# Sessions being opened at once before the clients start their pace.
OPEN_CONCURRENCY = 32
TRANSPORT = 0  # the status recorded when no HTTP answer came back


@dataclass(frozen=True)
class Plan:
    sessions: int  # clients, each with its own connection, cookie and session
    period: float  # seconds between one client's calls
    before: float  # seconds of steady pace before the kill
    after: float  # seconds watched once every affected client has recovered
    give_up: float = 30.0  # seconds after the kill when clients still failing count as not recovered
    keep_cookies: bool = True  # False: clients never send a cookie back


@dataclass(frozen=True)
class Attempt:
    at: float  # time.monotonic() when the answer (or the failure) came
    what: str  # "initialize", "initialized" or "call"
    status: int  # HTTP status, TRANSPORT for none
    ok: bool
    generation: int  # how many sessions this client had opened when it sent the request
    latency: float  # seconds from sending to the answer (or the failure)


class Client:
    def __init__(self, port: int, tls: ssl.SSLContext, *, keep_cookies: bool = True) -> None:
        self.host = f"{servers.LOOPBACK}:{port}"
        self.connection = Connection(servers.LOOPBACK, port, tls)
        self.keep_cookies = keep_cookies
        self.cookie = ""
        self.session_id = ""
        self.generation = 0
        self.attempts: list[Attempt] = []
        self._call_id = 0
        # Set by the first call answered at or after `watch_from` (a time.monotonic()).
        self.answered = asyncio.Event()
        self.watch_from: float | None = None

    async def _send(self, what: str, raw: bytes, expected: int) -> Response | None:
        sent = time.monotonic()
        try:
            response = await asyncio.wait_for(self.connection.request(raw), REQUEST_TIMEOUT)
        except (OSError, EOFError, TimeoutError, asyncio.LimitOverrunError):
            # Reset, refused, cut mid-answer or no answer in time: the connection is unusable.
            await self.connection.close()
            now = time.monotonic()
            self.attempts.append(Attempt(now, what, TRANSPORT, False, self.generation, now - sent))
            return None
        if self.keep_cookies:
            self.cookie = cookie_after(response, self.cookie)
        ok = response.status == expected and (what != "call" or EXPECTED_IN_ANSWER in response.body)
        now = time.monotonic()
        self.attempts.append(Attempt(now, what, response.status, ok, self.generation, now - sent))
        if what == "call" and ok and self.watch_from is not None and sent >= self.watch_from:
            self.answered.set()
        return response

    async def initialize(self) -> bool:
        self.session_id = ""
        response = await self._send("initialize", initialize_request(self.host, self.cookie), 200)
        if response is None or response.status != 200:
            return False
        session_id = response.headers[b"mcp-session-id"].decode("ascii")
        self.generation += 1
        response = await self._send("initialized", initialized_request(self.host, session_id, self.cookie), 202)
        if response is None or response.status != 202:
            return False  # a session the client never finished opening: the next tick starts another
        self.session_id = session_id
        return True

    async def call(self) -> int:
        self._call_id += 1
        raw = handshake_call(self.host, self.session_id, self.cookie)(self._call_id)
        response = await self._send("call", raw, 200)
        return TRANSPORT if response is None else response.status

    async def tick(self) -> None:
        """One turn of the pace: a call, and on 404 a new session and the call again."""
        if not self.session_id and not await self.initialize():
            return
        if await self.call() == 404 and await self.initialize():
            await self.call()

    async def end(self) -> None:
        """DELETE the session (if any: best effort, the run is over) and close the connection."""
        if self.session_id:
            headers = session_headers(self.session_id, self.cookie)
            with contextlib.suppress(OSError, EOFError, TimeoutError, asyncio.LimitOverrunError):
                await asyncio.wait_for(
                    self.connection.request(render_request("DELETE", "/mcp", self.host, headers)), CLOSE_TIMEOUT
                )
        await self.connection.close()

    async def run(self, first: float, period: float, stop: asyncio.Event) -> None:
        due = first
        while not stop.is_set():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if stop.is_set():
                return
            await self.tick()
            due += period
            while due < time.monotonic():  # a slow tick skips the turns it overran
                due += period


@dataclass
class Rotation:
    """What Traefik's API said after the kill (polled every 50 ms; slow to answer on a busy core)."""

    victim_out: float | None = None  # seconds after the kill when the killed node was first out
    survivors_out: dict[str, float] = field(default_factory=dict)  # healthy nodes taken out, first seen when


@dataclass
class ClientOutcome:
    node: str  # the node its session was on when the SIGKILL was sent
    affected: bool
    failures: Counter[str]  # after the kill, by kind: "5xx", "transport", "404", "other"
    first_failure: float | None  # seconds after the kill
    # Seconds after the kill: the first call answered after its first failure; 0.0 for a client
    # that never failed and was answered after the kill; None if no call was answered when it had to be.
    recovered: float | None
    first_answer: float | None  # seconds after the kill: its first call sent after the kill and answered
    reinitialized: int = 0  # `initialize` requests sent after the kill (each one a session lost)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def down_for(self) -> float | None:
        """Seconds from its first failed request to its recovery: the failover itself, without the pace."""
        if self.recovered is None or self.first_failure is None:
            return None
        return self.recovered - self.first_failure


@dataclass
class Failover:
    plan: Plan
    victim: str
    per_node: dict[str, int]
    outcomes: list[ClientOutcome]
    failed_before_kill: int  # should be zero
    busy_before: CpuUse  # during the steady pace before the kill
    harness_busy: float  # the harness's share of the client core then
    core_busy_after: float  # the server core, from the kill to the end
    observed: float  # seconds watched after the kill
    rotation: Rotation = field(default_factory=lambda: Rotation())
    # Failed active health checks of the surviving nodes after the kill, and how many of them timed out.
    survivor_health_failures: tuple[int, int] = (0, 0)
    last_5xx: float | None = None  # when the last 5xx after the kill was answered
    statuses: Counter[int] = field(default_factory=Counter)  # every failed answer after the kill, by status
    # tools/call latencies (seconds): every client's during the steady pace before the kill,
    # and the unaffected clients' after it (their nodes absorb the affected clients).
    before_latencies: list[float] = field(default_factory=list, repr=False)
    after_latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def affected(self) -> list[ClientOutcome]:
        return [outcome for outcome in self.outcomes if outcome.affected]

    @property
    def unaffected(self) -> list[ClientOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.affected]

    @property
    def recovery_times(self) -> list[float]:
        return sorted(outcome.recovered for outcome in self.affected if outcome.recovered is not None)

    @property
    def down_times(self) -> list[float]:
        return sorted(outcome.down_for for outcome in self.affected if outcome.down_for is not None)

    @property
    def unrecovered(self) -> int:
        return sum(1 for outcome in self.affected if outcome.recovered is None)

    @property
    def never_failed(self) -> int:
        return sum(1 for outcome in self.affected if not outcome.failed)

    @property
    def first_answers(self) -> list[float]:
        """Affected clients: seconds from the kill to the first call sent after it and answered."""
        return sorted(outcome.first_answer for outcome in self.affected if outcome.first_answer is not None)

    @property
    def reinitializations(self) -> int:
        """`initialize` requests sent after the kill, by any client: each is a session that did not survive."""
        return sum(outcome.reinitialized for outcome in self.outcomes)

    @property
    def reinitialized_clients(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.reinitialized)

    @property
    def failed_per_client(self) -> Counter[int]:
        """Affected clients by their number of failed requests after the kill."""
        return Counter(outcome.failed for outcome in self.affected)

    def kind_total(self, kind: str, clients: list[ClientOutcome] | None = None) -> int:
        return sum(outcome.failures[kind] for outcome in (self.affected if clients is None else clients))

    @property
    def unaffected_failed(self) -> int:
        return sum(outcome.failed for outcome in self.unaffected)

    def recovery_percentile(self, fraction: float) -> float:
        return percentile(self.recovery_times, fraction)

    @property
    def errors(self) -> int:
        """What no failover explains: failures before the kill, on unaffected clients, or no recovery."""
        return self.failed_before_kill + self.unaffected_failed + self.unrecovered


async def revive(started: Cluster, name: str, within: float = 30.0) -> None:
    """Start a stopped node again (a new life: new boot id, no sessions), on the server core, and wait
    until Traefik routes to it again (the pools and its own service), so that the next run starts whole."""
    await asyncio.to_thread(started.start_node, name)
    service = started.nodes[name]
    assert service.pid is not None
    move_to_server_core(service.pid)
    await wait_until_routed(started, name, within)


async def wait_until_routed(started: Cluster, name: str, within: float = 30.0) -> None:
    """Until Traefik's API counts `name` up in the pools (`mcp`, `app`) and in its own service."""
    deadline = time.monotonic() + within
    while True:
        try:
            pools = [await asyncio.to_thread(started.servers_up, pool) for pool in ("mcp", "app", name)]
        except Exception as error:  # Traefik's API busy or restarting; the deadline bounds this
            pools, last = [], repr(error)
        else:
            last = f"up: {pools}"
        if pools and all(name in up for up in pools):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Traefik did not route to the restarted {name} within {within:g} s ({last})")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def paced_clients(
    started: Cluster, sessions: int, period: float, *, keep_cookies: bool
) -> AsyncIterator[list[Client]]:
    """`sessions` clients, each with a session opened through Traefik, calling once per `period` at
    phases spread evenly over it until the block ends; then each ends its session (DELETE)."""
    tls = started.ssl_context()
    clients = [Client(started.config.https_port, tls, keep_cookies=keep_cookies) for _ in range(sessions)]
    pending = iter(clients)

    async def opener() -> None:
        for client in pending:
            if not await client.initialize():
                raise RuntimeError(f"initialize through Traefik failed: {client.attempts[-1]}")

    await asyncio.gather(*(opener() for _ in range(OPEN_CONCURRENCY)))
    stop = asyncio.Event()
    begin = time.monotonic() + 0.1
    tasks = [
        asyncio.create_task(client.run(begin + number * period / sessions, period, stop))
        for number, client in enumerate(clients)
    ]
    try:
        yield clients
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        remaining = iter(clients)

        async def closer() -> None:
            for client in remaining:
                await client.end()

        await asyncio.gather(*(closer() for _ in range(OPEN_CONCURRENCY)))


def node_of(started: Cluster, client: Client) -> str:
    """The node the client's session id names; by its cookie if it has no session ("-": neither says)."""
    routes = {traefik_config.Node(name, started.node_url(name)).route: name for name in started.node_names}
    route = route_of(client.session_id)
    if route in routes:
        return routes[route]
    return node_for_cookie(started, client.cookie) if client.cookie else "-"


def failure_kind(status: int) -> str:
    """How a failed call is counted: transport, 5xx, 404 or other."""
    if status == TRANSPORT:
        return "transport"
    if status >= 500:
        return "5xx"
    return "404" if status == 404 else "other"


async def measure(started: Cluster, plan: Plan) -> Failover:
    """Steady pace, SIGKILL, watch until every affected client is answered again (or `give_up`), then a little more."""
    async with paced_clients(started, plan.sessions, plan.period, keep_cookies=plan.keep_cookies) as clients:
        return await _kill_and_watch(started, clients, plan)


async def _kill_and_watch(started: Cluster, clients: list[Client], plan: Plan) -> Failover:
    await asyncio.sleep(plan.period)  # every client through its first turn
    meter, harness_start, steady = CpuMeter(cluster_pids(started)), time.process_time(), time.monotonic()
    await asyncio.sleep(plan.before)
    busy = meter.read()
    harness = (time.process_time() - harness_start) / plan.before

    nodes = [node_of(started, client) for client in clients]
    per_node = {name: nodes.count(name) for name in started.node_names}
    victim = max(per_node, key=per_node.__getitem__)
    affected = [node == victim for node in nodes]
    assert started.traefik is not None
    traefik_log = started.traefik.log_path
    log_offset = traefik_log.stat().st_size
    rotation, watched = Rotation(), asyncio.Event()
    killed, after_kill = time.monotonic(), CpuMeter()
    for client, hit in zip(clients, affected, strict=True):
        client.watch_from = killed if hit else None
    await asyncio.to_thread(started.kill_node, victim)
    watcher = asyncio.create_task(_watch_rotation(started, victim, killed, rotation, watched))
    everyone_back = asyncio.gather(*(client.answered.wait() for client in clients if client.watch_from is not None))
    with contextlib.suppress(TimeoutError):  # the clients still down are counted below
        await asyncio.wait_for(everyone_back, max(0.0, plan.give_up - (time.monotonic() - killed)))
    await asyncio.sleep(plan.after)
    observed = time.monotonic() - killed
    core_after = after_kill.read().core
    watched.set()
    await watcher
    with traefik_log.open(errors="replace") as log:
        log.seek(log_offset)
        health_failures = _health_check_failures(log.read(), started, victim)

    result = Failover(
        plan=plan,
        victim=victim,
        per_node=per_node,
        outcomes=[],
        failed_before_kill=sum(1 for client in clients for a in client.attempts if a.at < killed and not a.ok),
        busy_before=busy,
        harness_busy=harness,
        core_busy_after=core_after,
        observed=observed,
        rotation=rotation,
        survivor_health_failures=health_failures,
    )
    for number, client in enumerate(clients):
        calls = [a for a in client.attempts if a.what == "call" and a.ok]
        result.before_latencies += [a.latency for a in calls if steady <= a.at < killed]
        if not affected[number]:
            result.after_latencies += [a.latency for a in calls if a.at >= killed]
        failed = [a for a in client.attempts if a.at >= killed and not a.ok]
        result.statuses.update(a.status for a in failed)
        answered = [a.at for a in calls if a.at - a.latency >= killed]
        if failed:
            back = next((at for at in answered if at > failed[0].at), None)
            recovered = back - killed if back is not None else None
        else:
            recovered = 0.0 if answered else None
        result.outcomes.append(
            ClientOutcome(
                node=nodes[number],
                affected=affected[number],
                failures=Counter(failure_kind(a.status) for a in failed),
                first_failure=failed[0].at - killed if failed else None,
                recovered=recovered,
                first_answer=answered[0] - killed if answered else None,
                reinitialized=sum(1 for a in client.attempts if a.what == "initialize" and a.at - a.latency >= killed),
            )
        )
        fives = [a.at - killed for a in failed if a.status >= 500]
        if fives:
            result.last_5xx = max(result.last_5xx or 0.0, *fives)
    return result


async def _watch_rotation(
    started: Cluster, victim: str, killed: float, rotation: Rotation, stop: asyncio.Event
) -> None:
    """Poll Traefik's API for which nodes its sticky service routes to, from the kill until `stop`."""
    while not stop.is_set():
        try:
            up = await asyncio.to_thread(started.servers_up, "mcp")
        except Exception as error:  # the API is a diagnostic here, not what is measured
            print(f"  failover: Traefik's API did not answer ({error!r}); no longer watching it")
            return
        after = time.monotonic() - killed
        if victim not in up and rotation.victim_out is None:
            rotation.victim_out = after
        for name in started.node_names:
            if name != victim and name not in up:
                rotation.survivors_out.setdefault(name, after)
        await asyncio.sleep(0.05)


def _health_check_failures(log: str, started: Cluster, victim: str) -> tuple[int, int]:
    """Failed active health checks of the surviving nodes in Traefik's log: (all, timed out)."""
    urls = [f"{started.node_url(name)}{traefik_config.HEALTH_PATH}" for name in started.node_names if name != victim]
    failed = [line for line in log.splitlines() if "Health check failed" in line and any(u in line for u in urls)]
    return len(failed), sum(1 for line in failed if "deadline exceeded" in line)
