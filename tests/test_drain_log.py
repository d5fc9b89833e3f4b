"""A draining node's log: one INFO line when /healthz starts answering 503, not a record per health check."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx2 as httpx

from tests.mcp_http import open_session
from tests.nodes import Node

ANNOUNCEMENT = "Draining: /healthz answers 503 from now on"


def test_a_draining_node_says_so_once(tmp_path: Path) -> None:
    # Long enough for a few dozen health checks before the sessions are closed.
    node = Node(env={"MCP_NODE_ID": "quiet", "MCP_SHUTDOWN_DRAIN_DELAY": "1.5"}, log_path=tmp_path / "node.log").start()
    assert node.process is not None
    statuses: list[int] = []
    with httpx.Client(timeout=10.0) as client:
        open_session(client, node.mcp_url)
        node.process.send_signal(signal.SIGTERM)
        while node.process.poll() is None:
            try:
                statuses.append(client.get(f"{node.url}/healthz").status_code)
            except httpx.TransportError:
                break
            time.sleep(0.03)
    assert node.process.wait(timeout=15) == 0

    assert statuses.count(503) >= 10
    log = node.log()
    [announcement] = [line for line in log.splitlines() if ANNOUNCEMENT in line]
    assert " INFO sessions_app.cluster.shutdown " in announcement
    assert "(sessions left: 1, open streams: 0; " in announcement
    assert " ERROR " not in log
    assert "Service Unavailable" not in log
