"""One child process of the local cluster: started, probed until ready, stopped by its pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


def node_command(host: str, port: int, *options: str) -> list[str]:
    """A node's command line: mcpsite.asgi on host:port under mcpsite/http_server.py, with this interpreter.

    The local cluster, the tests and the benchmark all start nodes with it.
    """
    server = [sys.executable, "-m", "mcpsite.http_server", *options]
    return [*server, "-b", host, "-p", str(port), "mcpsite.asgi:application"]


class ClusterError(RuntimeError):
    """The cluster could not be started as asked; the message says what to do."""


@dataclass
class Service:
    name: str
    argv: list[str]
    log_path: Path
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    # True once the process serves; probed after start (exceptions count as "not yet").
    ready: Callable[[], bool] = lambda: True
    # What the status table shows beside the name (a URL).
    address: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def state(self) -> str:
        if self.process is None:
            return "not started"
        code = self.process.poll()
        if code is None:
            return f"running (pid {self.process.pid})"
        if code < 0:
            return f"exited ({signal.Signals(-code).name})"
        return f"exited (code {code})"

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until `ready()`; raise ClusterError with the log's tail if it does not."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A session of its own: Ctrl-C in the terminal reaches the cluster
            # runner only, which then stops everything in order.
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ClusterError(f"{self.name} exited while starting ({self.state()}):\n{self.log_tail()}")
            if self._probe():
                return
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise ClusterError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def _probe(self) -> bool:
        try:
            return self.ready()
        except Exception:  # a probe that cannot connect yet just means "not ready"
            return False

    def send(self, sig: int) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """The exit code once the process has exited, or None if it still runs after `timeout`."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Send `sig` once, wait up to `timeout`, then SIGKILL; returns the exit code."""
        self.send(sig)
        return self.wait_or_kill(timeout)

    def wait_or_kill(self, timeout: float) -> int | None:
        """Wait for an exit already asked for (a second SIGTERM would cut a node's drain short)."""
        if self.process is None:
            return None
        if self.wait(timeout) is None:
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with `extra` on top (children inherit PATH, locale and so on)."""
    return {**os.environ, **extra}
