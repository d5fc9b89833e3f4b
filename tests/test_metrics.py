"""A node counts what it does on /metrics, on a port of its own, with labels from fixed sets.

One real daphne node with Redis (registry and channel layer) and its metrics
port; each test reads the counters before and after what it does, so the
tests may run in any order on the shared node. The garbage collector's pauses
are timed in this process.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sessions_app.metrics import watch_garbage_collection
from tests.mcp_http import modern_headers, modern_request, open_session, session_headers
from tests.nodes import LOOPBACK, Node, free_port
from tests.redis_server import RedisServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def node(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    env = {"REDIS_URL": redis_server.url, "MCP_METRICS_PORT": str(free_port()), "MCP_MAX_SESSIONS": "77"}
    started = Node(env=env, log_path=tmp_path_factory.mktemp("metrics") / "daphne.log").start()
    yield started
    started.stop()


def metrics_url(node: Node) -> str:
    return f"http://{LOOPBACK}:{node.env['MCP_METRICS_PORT']}/metrics"


def scrape(node: Node) -> Samples:
    response = httpx.get(metrics_url(node))
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def call(client: httpx.Client, node: Node, session_id: str, method: str, params: dict[str, object]) -> httpx.Response:
    message = {"jsonrpc": "2.0", "id": 5, "method": method, "params": params}
    return client.post(node.mcp_url, json=message, headers=session_headers(session_id))


def test_metrics_are_on_their_own_port_and_not_on_the_public_one(node: Node) -> None:
    samples = scrape(node)
    assert value(samples, "mcp_sessions_max") == 77
    assert ("process_cpu_seconds_total", ()) in samples
    assert httpx.get(f"{node.url}/metrics").status_code == 404


def test_a_session_s_life_is_counted(node: Node) -> None:
    before = scrape(node)
    with httpx.Client(timeout=10.0) as client:
        session_id = open_session(client, node.mcp_url)
        during = scrape(node)
        answer = call(client, node, session_id, "tools/call", {"name": "echo", "arguments": {"text": "hi"}})
        assert answer.status_code == 200
        assert call(client, node, session_id, "no/such/method", {}).status_code == 200  # a JSON-RPC error
        assert client.delete(node.mcp_url, headers=session_headers(session_id)).status_code == 204
    after = scrape(node)

    assert value(during, "mcp_sessions_open") == value(before, "mcp_sessions_open") + 1
    assert value(after, "mcp_sessions_open") == value(before, "mcp_sessions_open")
    assert value(after, "mcp_sessions_opened_total") - value(before, "mcp_sessions_opened_total") == 1
    closed = ("mcp_sessions_closed_total", {"reason": "delete"})
    assert value(after, closed[0], **closed[1]) - value(before, closed[0], **closed[1]) == 1
    lived = ("mcp_server_session_duration_seconds_count", {"reason": "delete"})
    assert value(after, lived[0], **lived[1]) - value(before, lived[0], **lived[1]) == 1

    def operations(samples: Samples, method: str, outcome: str) -> float:
        labels = {"method": method, "era": "handshake", "outcome": outcome}
        return value(samples, "mcp_server_operation_duration_seconds_count", **labels)

    assert operations(after, "initialize", "ok") - operations(before, "initialize", "ok") == 1
    assert operations(after, "tools/call", "ok") - operations(before, "tools/call", "ok") == 1
    # A method nobody knows is counted, under "other": never under its own name.
    assert operations(after, "other", "error") - operations(before, "other", "error") == 1
    assert not any("no/such/method" in str(labels) for _, labels in after)


def test_stateless_calls_and_misses_are_counted_by_kind(node: Node) -> None:
    before = scrape(node)
    with httpx.Client(timeout=10.0) as client:
        request = modern_request("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
        assert client.post(node.mcp_url, json=request, headers=modern_headers("tools/call", "echo")).status_code == 200
        bogus = session_headers("0123abcd." + "e" * 48)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        assert client.post(node.mcp_url, json=ping, headers=bogus).status_code == 404
    after = scrape(node)

    labels = {"method": "tools/call", "era": "stateless", "outcome": "ok"}
    name = "mcp_server_operation_duration_seconds_count"
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    misses = ("mcp_session_misses_total", {"kind": "unknown"})
    assert value(after, misses[0], **misses[1]) - value(before, misses[0], **misses[1]) == 1
    # The miss read the registry: its latency is recorded by operation.
    reads = ("mcp_registry_operation_duration_seconds_count", {"operation": "get"})
    assert value(after, reads[0], **reads[1]) > value(before, reads[0], **reads[1])


def test_refusals_are_counted_by_status(node: Node) -> None:
    before = scrape(node)
    with httpx.Client(timeout=10.0) as client:
        huge = b"x" * (5 * 1024 * 1024)
        answer = client.post(
            node.mcp_url, content=huge, headers={**session_headers("x"), "Content-Type": "application/json"}
        )
        assert answer.status_code == 413
    after = scrape(node)
    name = "mcp_admission_refusals_total"
    assert value(after, name, status="413") - value(before, name, status="413") == 1


def test_each_garbage_collection_is_timed_by_its_generation() -> None:
    watch_garbage_collection()
    watch_garbage_collection()  # timed once however often asked: the node's startup and a test may both ask
    count = "mcp_gc_pause_seconds_count"
    before = REGISTRY.get_sample_value(count, {"generation": "2"}) or 0.0
    total_before = REGISTRY.get_sample_value("mcp_gc_pause_seconds_sum", {"generation": "2"}) or 0.0

    gc.collect()

    assert REGISTRY.get_sample_value(count, {"generation": "2"}) == before + 1
    assert (REGISTRY.get_sample_value("mcp_gc_pause_seconds_sum", {"generation": "2"}) or 0.0) > total_before
