"""The processes under test: our daphne node, the SDK reference under uvicorn, and a private Redis.

With `taskset` and at least two cores, servers run on core 0 and the harness
(the load generator) moves itself to core 1, so the client never steals the
server's CPU. Everything binds to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
SERVER_CORE = 0
CLIENT_CORE = 1
# Never inherited by a node unless the scenario asks for Redis.
_SCRUBBED = ("REDIS_URL", "DATABASE_URL", "MCP_SESSION_REGISTRY", "MCP_JSON_RESPONSE", "MCP_SERVER")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@functools.cache
def pinning_available() -> bool:
    """Decided once, before the harness pins itself to the client core."""
    return shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2


def pin_client() -> bool:
    """Move this process (the load generator) to the client core; True if it did."""
    if not pinning_available():
        return False
    os.sched_setaffinity(0, {CLIENT_CORE})
    return True


def _pinned(argv: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if pinning_available() else argv


@dataclass
class ServerProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    core: int = SERVER_CORE
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 30.0) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                _pinned(self.argv, self.core), cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}:\n{self.log_path.read_text()}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on {self.port} within {timeout}s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _SCRUBBED}
    return {**env, **extra}


def our_node(log_dir: Path, *, json_response: bool, redis_url: str = "") -> ServerProcess:
    """Our production server: daphne serving mcpsite.asgi with the one-tool echo server."""
    port = free_port()
    env = _clean_env(
        DJANGO_SETTINGS_MODULE="mcpsite.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_LOG_LEVEL="WARNING",
        MCP_SERVER="sessions_app.echo_server.server",
        MCP_JSON_RESPONSE="1" if json_response else "0",
        MCP_SHUTDOWN_DRAIN_DELAY="0",
        MCP_NODE_ID=f"bench-{port}",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    # `-v 0`: no access log, like the reference's `--no-access-log`. At its default
    # verbosity (the Dockerfile's) daphne writes one access-log line per request.
    argv = [sys.executable, "-m", "daphne", "-v", "0", "-b", LOOPBACK, "-p", str(port), "mcpsite.asgi:application"]
    mode = "json" if json_response else "sse"
    return ServerProcess(f"ours-{mode}", argv, env, log_dir / f"ours-{mode}-{port}.log", port)


def reference(log_dir: Path, *, json_response: bool) -> ServerProcess:
    """The SDK's own Streamable HTTP app (bench/reference_app.py) under uvicorn."""
    port = free_port()
    env = _clean_env(BENCH_REFERENCE_JSON="1" if json_response else "0")
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "bench.reference_app:create_app",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    mode = "json" if json_response else "sse"
    return ServerProcess(f"reference-{mode}", argv, env, log_dir / f"reference-{mode}-{port}.log", port)


def redis_server(log_dir: Path) -> ServerProcess:
    """A private redis-server on a free loopback port, nothing on disk, on the client's core."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    argv = [binary, "--bind", LOOPBACK, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(log_dir)]
    return ServerProcess("redis", argv, dict(os.environ), log_dir / f"redis-{port}.log", port, core=CLIENT_CORE)
