"""The processes under test: our daphne node, the SDK reference under uvicorn, and a private Redis.

With `taskset` and at least two cores, servers run on core 0 and the harness
(the load generator) moves itself to core 1, so the client never steals the
server's CPU. Everything binds to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import functools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import node_command
from oauth_app.keys import create_key_file

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


def cpu_seconds(pid: int) -> float:
    """CPU a process has used (utime + stime, all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin_client() -> bool:
    """Move this process (the load generator) to the client core; True if it did."""
    if not pinning_available():
        return False
    os.sched_setaffinity(0, {CLIENT_CORE})
    return True


def pinned(argv: list[str], core: int) -> list[str]:
    """`argv` run on `core` when pinning is available, as is otherwise."""
    return ["taskset", "-c", str(core), *argv] if pinning_available() else argv


@dataclass
class ServerProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    core: int = SERVER_CORE
    # Set only for a server that refuses root (PostgreSQL): the account it runs as, with that
    # account's group and no other, when this process is root.
    user: str | None = None
    cwd: Path = REPO
    stop_signal: signal.Signals = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.launch()
        return self.wait_listening(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it (to start several at once)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                pinned(self.argv, self.core),
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                group=group_of(self.user),
                extra_groups=None if self.user is None else [],
            )

    def wait_listening(self, timeout: float = 30.0) -> ServerProcess:
        assert self.process is not None, "launch() first"
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
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def group_of(user: str | None) -> int | None:
    """The primary group of `user`, to run a process as that account (None: this process's own)."""
    return None if user is None else pwd.getpwnam(user).pw_gid


def _clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _SCRUBBED}
    return {**env, **extra}


ECHO_SERVER = "sessions_app.echo_server.server"
DECISION_SERVER = "graphql_app.mcp.server.server"  # the settings' default: the decision log


def node_env(**extra: str) -> dict[str, str]:
    """The environment every node (and `manage.py` run for one) starts from.

    Authorization is off unless `extra` turns it on: the load generator sends no
    tokens. Production settings still need a token signing key; one for all
    benchmark nodes.
    """
    signing_key = REPO / ".oauth" / "bench-signing-key.pem"
    create_key_file(signing_key)
    return _clean_env(
        DJANGO_SETTINGS_MODULE="mcpsite.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        OAUTH_SIGNING_KEY_FILE=str(signing_key),
        DJANGO_LOG_LEVEL="WARNING",
        # One load generator stands for thousands of clients: no per-client share.
        **{"MCP_AUTH": "off", "MCP_MAX_SESSIONS_PER_CLIENT": "0", "MCP_MAX_LISTEN_STREAMS_PER_CLIENT": "0", **extra},
    )


def manage(env: Mapping[str, str], *args: str) -> None:
    """Run `manage.py` with a node's environment, as an operator would before starting it."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def our_node(
    log_dir: Path,
    *,
    json_response: bool,
    redis_url: str = "",
    mcp_server: str = ECHO_SERVER,
    extra_env: Mapping[str, str] | None = None,
    name: str = "",
) -> ServerProcess:
    """Our production server: daphne serving mcpsite.asgi, by default with the one-tool echo server."""
    port = free_port()
    env = node_env(
        MCP_SERVER=mcp_server,
        MCP_JSON_RESPONSE="1" if json_response else "0",
        MCP_SHUTDOWN_DRAIN_DELAY="0",
        MCP_NODE_ID=f"bench-{port}",
        **(extra_env or {}),
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    # `-v 0`: no access log, like the reference's `--no-access-log`. At its default
    # verbosity (the Dockerfile's) daphne writes one access-log line per request.
    argv = node_command(LOOPBACK, port, "-v", "0")
    label = name or f"ours-{'json' if json_response else 'sse'}"
    return ServerProcess(label, argv, env, log_dir / f"{label}-{port}.log", port)


def floor(log_dir: Path, *, json_response: bool) -> ServerProcess:
    """The floor of our stack: a bare consumer answering fixed bytes under our server (bench/floor_app.py)."""
    env = {"BENCH_FLOOR_SSE": "0" if json_response else "1"}
    return _under_our_server(log_dir, "floor", "bench.floor_app:application", json_response, env)


def reference_under_daphne(log_dir: Path, *, json_response: bool) -> ServerProcess:
    """The reference application under our production server (bench/reference_daphne.py)."""
    env = {"BENCH_REFERENCE_JSON": "1" if json_response else "0"}
    return _under_our_server(log_dir, "reference-daphne", "bench.reference_daphne:application", json_response, env)


def _under_our_server(
    log_dir: Path, label: str, application: str, json_response: bool, env: Mapping[str, str]
) -> ServerProcess:
    """`application` served by `python -m mcpsite.http_server`, as our node is (no access log)."""
    port = free_port()
    argv = [*node_command(LOOPBACK, port, "-v", "0")[:-1], application]
    name = f"{label}-{'json' if json_response else 'sse'}"
    return ServerProcess(name, argv, node_env(**env), log_dir / f"{name}-{port}.log", port)


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
        # The SDK installs uvicorn without its extras: the stdlib event loop and h11. uvloop is
        # in this environment for our server; uvicorn's default (`auto`) would pick it up too.
        "--loop",
        "asyncio",
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
