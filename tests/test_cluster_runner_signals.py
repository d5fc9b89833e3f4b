"""`python -m deploy.cluster` (make cluster) stops every child on any stop signal, repeated ones included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.nodes import REPO, free_port


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (redis-server, migrations done, the daphne nodes, traefik, prometheus)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    "signals", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGHUP,)], ids=["SIGTERM twice", "SIGHUP"]
)
def test_a_stop_signal_stops_every_child(tmp_path: Path, signals: tuple[signal.Signals, ...]) -> None:
    env = {
        **os.environ,
        "CLUSTER_STATE_DIR": str(tmp_path / "cluster"),
        "CLUSTER_HTTPS_PORT": str(free_port()),
        "CLUSTER_API_PORT": str(free_port()),
        "CLUSTER_TRAEFIK_METRICS_PORT": str(free_port()),
        "CLUSTER_PROMETHEUS_PORT": str(free_port()),
        "CLUSTER_METRICS_PORTS": ",".join(str(free_port()) for _ in range(3)),
        "CLUSTER_REDIS_PORT": str(free_port()),
        "CLUSTER_NODE_PORTS": ",".join(str(free_port()) for _ in range(3)),
        "MCP_AUTH": "off",
        "MCP_SHUTDOWN_DRAIN_DELAY": "0",
        "MCP_SERVER": "sessions_app.echo_server.server",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    output = tmp_path / "runner.log"
    with output.open("wb") as log:
        runner = subprocess.Popen(
            [sys.executable, "-m", "deploy.cluster"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops everything" not in output.read_text(errors="replace"):
            assert runner.poll() is None, output.read_text(errors="replace")
            assert time.monotonic() < deadline, output.read_text(errors="replace")
            time.sleep(0.2)
        children = _children(runner.pid)
        assert len(children) == 6  # redis, three nodes, traefik, prometheus

        first, *again = signals
        runner.send_signal(first)
        # The next ones once it is stopping (sent back to back, the kernel would merge them into one).
        while again and "received; stopping" not in output.read_text(errors="replace"):
            time.sleep(0.01)
        for sig in again:
            runner.send_signal(sig)
        code = runner.wait(90)

        text = output.read_text(errors="replace")
        assert code == 0, text
        assert "Traceback" not in text
        deadline = time.monotonic() + 10
        while any(_alive(child) for child in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [child for child in children if _alive(child)] == []
    finally:
        if runner.poll() is None:
            runner.kill()
        for child in children:
            if _alive(child):  # only what this test started, by pid
                os.kill(child, signal.SIGKILL)
