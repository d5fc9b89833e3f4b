"""A real cluster for tests (Traefik, three daphne nodes, redis-server), and clients that talk through it.

The cluster is deploy/cluster.py's, the one `make cluster` runs, with a
temporary state directory, free loopback ports, and short heartbeats, grace
periods and health-check intervals so failures play out in seconds.

Which node served a request is read from Traefik's JSON access log, the
proxy's own account of where it sent each request: every test client tags its
URL with a query string (`?c=<tag>`) that the routers ignore and the log keeps.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2 as httpx
import redis
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent

from deploy.cluster import Cluster, ClusterConfig
from deploy.traefik_config import HealthTiming
from tests.nodes import TEST_NODE_DEFAULTS, free_port

# Short enough that a kill or a drain plays out in a second or two.
FAST_NODE_ENV = {
    # A server with an `echo` tool and no database (the transport is what is under test).
    "MCP_SERVER": TEST_NODE_DEFAULTS["MCP_SERVER"],
    "MCP_NODE_HEARTBEAT_TTL": "1.5",
    "MCP_REAPER_INTERVAL": "0.3",
    "MCP_STALE_GRACE": "1",
    # Four health-check intervals: Traefik has moved traffic away before sessions close.
    "MCP_SHUTDOWN_DRAIN_DELAY": "1",
    "MCP_SHUTDOWN_GRACE": "8",
}
FAST_HEALTH = HealthTiming(interval="250ms", timeout="2s")


def start_test_cluster(state_dir: Path, *, prometheus: bool = False, **node_env: str) -> Cluster:
    """The cluster on free ports; with `prometheus`, a Prometheus scraping it every second too."""
    ports: list[int] = []
    while len(ports) < 11:
        port = free_port()
        if port not in ports:
            ports.append(port)
    config = ClusterConfig(
        state_dir=state_dir,
        https_port=ports[0],
        node_ports=(ports[1], ports[2], ports[3]),
        api_port=ports[4],
        redis_port=ports[5],
        traefik_metrics_port=ports[6],
        metrics_ports=(ports[7], ports[8], ports[9]),
        prometheus_port=ports[10] if prometheus else None,
        health=FAST_HEALTH,
        node_env={**FAST_NODE_ENV, **node_env},
    )
    return Cluster(config).start()


def wait_for(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def redis_client(cluster: Cluster) -> redis.Redis:
    return redis.Redis.from_url(cluster.redis_url, decode_responses=True, socket_timeout=5)


def session_keys(cluster: Cluster) -> list[str]:
    return sorted(str(key) for key in redis_client(cluster).scan_iter("mcp:session:*"))


def session_records(cluster: Cluster) -> list[dict[str, Any]]:
    store = redis_client(cluster)
    records = [store.get(key) for key in store.scan_iter("mcp:session:*")]
    return [dict(json.loads(str(record))) for record in records if record is not None]


def miss_lines(cluster: Cluster, node: str) -> list[str]:
    return [line for line in cluster.node_log(node).splitlines() if "MCP session miss:" in line]


# --- Traefik's access log ----------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    """One request as Traefik logged it."""

    method: str
    path: str
    router: str
    node: str
    status: int


def routed(cluster: Cluster, tag: str) -> list[Routed]:
    """Every request whose URL carried `c=<tag>`, in the order Traefik finished them."""
    by_url = {cluster.node_url(name): name for name in cluster.node_names}
    found = []
    for line in cluster.access_log_path.read_text().splitlines():
        entry = json.loads(line)
        path = str(entry.get("RequestPath", ""))
        if f"c={tag}" not in path.partition("?")[2].split("&"):
            continue
        found.append(
            Routed(
                method=str(entry["RequestMethod"]),
                path=path,
                router=str(entry.get("RouterName", "")),
                node=by_url.get(str(entry.get("ServiceURL", "")), "-"),
                status=int(entry["DownstreamStatus"]),
            )
        )
    return found


def wait_for_routed(cluster: Cluster, tag: str, count: int) -> list[Routed]:
    """Traefik writes an entry once the response is done: wait for `count` of them."""
    wait_for(lambda: len(routed(cluster, tag)) >= count, f"{count} access-log entries tagged {tag}")
    return routed(cluster, tag)


# --- clients ------------------------------------------------------------------------


class SessionClient:
    """The official SDK client, as a well-behaved application drives it.

    The SDK raises on a 404 for its session and does not start a new one by
    itself: this wrapper sends initialize again (on the same HTTP client, so
    the cookie jar carries on), as the spec tells clients to. Any other failed
    request (a 502 from a node that just died) is retried on the same session.
    Every HTTP status the client saw is kept, with the session ids it was given.

    Each SDK session lives in a task of its own: when the SDK's background
    tasks fail (a GET stream cut by a dying node), they cancel the task that
    opened the session, which must not be the caller's.
    """

    def __init__(self, cluster: Cluster, tag: str, *, mode: str = "legacy") -> None:
        self.url = f"{cluster.mcp_url}?c={tag}"
        self.mode = mode
        self.statuses: list[tuple[str, int]] = []
        self.set_cookies: list[str] = []
        self.session_ids: list[str] = []
        self.failures: list[str] = []
        self.initializations = 0
        self.http = httpx.AsyncClient(
            verify=cluster.ssl_context(),
            timeout=httpx.Timeout(10.0, read=30.0),
            event_hooks={"response": [self._seen]},
        )
        self._tasks = anyio.create_task_group()
        self._client: Client | None = None
        self._close: anyio.Event | None = None
        self._closed: anyio.Event | None = None

    async def __aenter__(self) -> SessionClient:
        await self._tasks.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        with anyio.CancelScope(shield=True):
            await self.disconnect()
        try:
            await self._tasks.__aexit__(*exc)
        finally:
            await self.http.aclose()

    async def _seen(self, response: httpx.Response) -> None:
        self.statuses.append((response.request.method, response.status_code))
        self.set_cookies.extend(response.headers.get_list("set-cookie"))
        session_id = response.headers.get("mcp-session-id")
        if session_id is not None and session_id not in self.session_ids:
            self.session_ids.append(session_id)

    def last_post_status(self) -> int | None:
        posts = [status for method, status in self.statuses if method == "POST"]
        return posts[-1] if posts else None

    async def connect(self) -> None:
        self._client = await self._tasks.start(self._hold_session)
        self.initializations += 1

    async def _hold_session(self, *, task_status: anyio.abc.TaskStatus[Client]) -> None:
        close, closed = anyio.Event(), anyio.Event()
        started = False
        try:
            async with Client(streamable_http_client(self.url, http_client=self.http), mode=self.mode) as client:
                self._close, self._closed = close, closed
                task_status.started(client)
                started = True
                await close.wait()
        except Exception as error:
            if not started:
                raise  # initialize failed: the caller of connect() hears of it
            # The transport died under the session; the next call notices and reconnects.
            self.failures.append(f"session task: {error!r}")
        finally:
            closed.set()

    async def disconnect(self) -> None:
        """End the current session (its DELETE may fail: its node may be gone)."""
        close, closed = self._close, self._closed
        self._client = self._close = self._closed = None
        if close is not None and closed is not None:
            close.set()
            with anyio.move_on_after(10):
                await closed.wait()

    async def echo(self, text: str, attempts: int = 6) -> str:
        for _ in range(attempts):
            try:
                if self._client is None:
                    await self.connect()
                assert self._client is not None
                result = await self._client.call_tool("echo", {"text": text})
            except MCPError as error:
                self.failures.append(f"{self.last_post_status()}: {error!r}")
                if self.last_post_status() == 404:
                    await self.disconnect()  # the session is gone: initialize again
                else:
                    await anyio.sleep(0.1)  # a 502 or 503: try the same session again
                continue
            except Exception as error:  # the session's transport is broken: start a new one
                self.failures.append(f"transport: {error!r}")
                await self.disconnect()
                await anyio.sleep(0.1)
                continue
            content = result.content[0]
            assert isinstance(content, TextContent)
            return content.text
        raise AssertionError(f"echo did not succeed in {attempts} attempts: {self.failures[-attempts:]}")


def cookie_jar_that_keeps_nothing() -> Any:
    """For httpx2's `cookies=`: a standard-library jar whose policy accepts no cookie."""
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


@contextlib.contextmanager
def plain_client(cluster: Cluster, *, keep_cookies: bool = True) -> Any:
    cookies = None if keep_cookies else cookie_jar_that_keeps_nothing()
    with httpx.Client(verify=cluster.ssl_context(), timeout=10.0, cookies=cookies) as client:
        yield client
