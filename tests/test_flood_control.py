"""Floods of bad input cost a bounded amount of logging and registry reads (one real node, a real Redis)."""

from __future__ import annotations

import logging
import math
import secrets
import time

import httpx2 as httpx
import pytest

from sessions_app.cluster.misroute import UNKNOWN_ID_SECONDS
from sessions_app.log_rate_limit import RateLimited
from tests.conftest import StartNode
from tests.mcp_http import session_headers
from tests.nodes import Node
from tests.redis_server import RedisServer
from tests.test_cluster import RedisMonitor

LISTING = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
LOOKUPS_PER_SECOND = 20
MISS_LINE = "MCP session miss"


def bogus_id() -> str:
    # Well formed (a route, a dot, 48 hex digits), of a node that never existed.
    return f"deadbeef.{secrets.token_hex(24)}"


@pytest.fixture(scope="module")
def flood_node(node_factory: StartNode, redis_server: RedisServer) -> Node:
    return node_factory(
        REDIS_URL=redis_server.url, MCP_NODE_ID="flood", MCP_MISS_LOOKUPS_PER_SECOND=str(LOOKUPS_PER_SECOND)
    )


def _misses(node: Node, session_ids: list[str], http_client: httpx.Client) -> list[int]:
    return [
        http_client.post(node.mcp_url, json=LISTING, headers=session_headers(sid)).status_code for sid in session_ids
    ]


def test_a_thousand_bogus_ids_cost_a_bounded_number_of_registry_reads_and_log_lines(
    flood_node: Node, redis_server: RedisServer, http_client: httpx.Client
) -> None:
    log_before = flood_node.log().count(MISS_LINE)
    with RedisMonitor(redis_server) as monitor:
        started = time.monotonic()
        statuses = _misses(flood_node, [bogus_id() for _ in range(1000)], http_client)
        elapsed = time.monotonic() - started
        reads = monitor.commands_on("mcp:session:")

    assert statuses == [404] * 1000
    print(f"\n1,000 bogus ids in {elapsed:.1f} s: {len(reads)} registry reads")
    # The bucket starts full (LOOKUPS_PER_SECOND) and refills at that rate.
    assert len(reads) <= LOOKUPS_PER_SECOND * (1 + elapsed) + 1
    # Five lines of this kind a minute (settings.LOGGING), not a thousand.
    assert flood_node.log().count(MISS_LINE) - log_before <= 5


def test_an_id_just_found_unknown_is_not_looked_up_again(
    flood_node: Node, redis_server: RedisServer, http_client: httpx.Client
) -> None:
    time.sleep(1.5)  # let the lookup budget refill
    repeated = [bogus_id() for _ in range(10)] * 30
    with RedisMonitor(redis_server) as monitor:
        started = time.monotonic()
        statuses = _misses(flood_node, repeated, http_client)
        elapsed = time.monotonic() - started
        reads = monitor.commands_on("mcp:session:")

    assert statuses == [404] * 300
    # Each id is asked about once per UNKNOWN_ID_SECONDS at most (once, on a
    # machine quick enough to send them all within that). Without the memory
    # of unknown ids, the lookup budget alone would allow 20 + 20 a second.
    assert len(reads) <= 10 * math.ceil(elapsed / UNKNOWN_ID_SECONDS)


def test_bad_hosts_write_short_rate_limited_lines(node_factory: StartNode, http_client: httpx.Client) -> None:
    node = node_factory(MCP_NODE_ID="bad-hosts")
    for _ in range(200):
        assert http_client.get(f"{node.url}/graphql", headers={"Host": "evil.example"}).status_code == 400
    time.sleep(0.3)

    log = node.log()
    assert "Traceback" not in log
    assert 1 <= log.count("Invalid HTTP_HOST header") <= 5


def test_the_filter_reports_how_many_it_dropped() -> None:
    logger = logging.getLogger("tests.flood")
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    handler.addFilter(RateLimited(window=0.5, burst=2))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for number in range(1000):
            logger.warning("bogus session %s", number)
        time.sleep(0.6)
        logger.warning("bogus session %s", "late")
    finally:
        logger.removeHandler(handler)

    assert seen == ["bogus session 0", "bogus session 1", "bogus session late (and 998 more like it in the last 0.5 s)"]
