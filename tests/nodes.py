"""Real daphne processes for tests: started on a free loopback port, stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from deploy.processes import node_command

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# What every test node gets unless the test says otherwise.
TEST_NODE_DEFAULTS = {
    "DJANGO_SETTINGS_MODULE": "tests.settings",
    # Transport tests need no database; tests of the decision log name its server.
    "MCP_SERVER": "sessions_app.echo_server.server",
    # Nothing watches a test node's /healthz: no need to wait before closing sessions.
    "MCP_SHUTDOWN_DRAIN_DELAY": "0",
}


def manage(env: Mapping[str, str], *args: str) -> str:
    """Run `manage.py` with a node's environment, as an operator would on its machine; its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**os.environ, **TEST_NODE_DEFAULTS, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@contextlib.contextmanager
def node_maker(log_dir: Path, base_env: Mapping[str, str]) -> Iterator[Callable[..., Node]]:
    """`make(node_id, **env)` starts a node named `node_id` with `base_env` and `env`; all are killed at the end."""
    nodes: list[Node] = []

    def make(node_id: str, **env: str) -> Node:
        node = Node(env={**base_env, "MCP_NODE_ID": node_id, **env}, log_path=log_dir / f"{node_id}.log").start()
        nodes.append(node)
        return node

    try:
        yield make
    finally:
        for node in nodes:
            node.stop(signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass
class Node:
    """One daphne process serving mcpsite.asgi."""

    env: Mapping[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    def start(self, timeout: float = 20.0) -> Node:
        env = {**os.environ, **TEST_NODE_DEFAULTS, **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            node_command(LOOPBACK, self.port),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"daphne did not answer /healthz within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
