"""Scenario 7: the Redis commands our node sends per request and per session lifecycle.

A private redis-server is watched with MONITOR (one line per command, keys
included), so each command can be counted, named, and told apart as touching
the session's own keys (its id appears in the command) or not. Background
traffic (node heartbeats, the reaper, channel-layer polling) is measured over
an idle window first and subtracted as a rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import servers
from .messages import close_session, handshake_call, open_session
from .rawhttp import Connection


@dataclass
class Window:
    """What MONITOR saw between start() and stop()."""

    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    def commands(self) -> Counter[str]:
        return Counter(_command_name(line) for line in self.lines)

    def mentioning(self, text: str) -> int:
        return sum(1 for line in self.lines if text in line)


@dataclass
class RedisCost:
    requests: int
    sessions: int
    idle_per_second: float
    per_request: float  # background subtracted
    per_request_on_session_keys: float  # commands naming the session id
    request_commands: Counter[str]  # raw counts over the whole request window, by command
    per_lifecycle: float  # background subtracted
    lifecycle_commands: Counter[str]  # raw counts over all lifecycles, by command


def _command_name(line: str) -> str:
    # `+1764157000.123456 [0 127.0.0.1:50000] "HSET" "key" ...`
    _, _, rest = line.partition('] "')
    return rest.split('"', 1)[0].upper() or "?"


class Monitor:
    def __init__(self, port: int) -> None:
        self.port = port
        self._task: asyncio.Task[None] | None = None
        self._window = Window()
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_connection(servers.LOOPBACK, self.port)
        self._writer.write(b"MONITOR\r\n")
        if (await reader.readline()).strip() != b"+OK":
            raise RuntimeError("redis-server refused MONITOR")
        self._task = asyncio.get_running_loop().create_task(self._collect(reader))

    async def _collect(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            self._window.lines.append(line.decode(errors="replace").rstrip())

    async def window(self) -> Window:
        """Start a fresh window (its `seconds` holds the start time until `stop_window`)."""
        self._window = Window(seconds=time.monotonic())
        return self._window

    async def stop_window(self, window: Window) -> Window:
        ended = time.monotonic()
        await asyncio.sleep(0.2)  # let MONITOR lines for the last commands arrive
        window.seconds = ended - window.seconds
        self._window = Window()
        return window

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


async def measure(log_dir: Path, *, requests: int, sessions: int, idle_seconds: float) -> RedisCost:
    with (
        servers.redis_server(log_dir) as redis,
        servers.our_node(log_dir, json_response=True, redis_url=f"redis://{servers.LOOPBACK}:{redis.port}/0") as node,
    ):
        host = f"{servers.LOOPBACK}:{node.port}"
        connection = Connection(servers.LOOPBACK, node.port)
        monitor = Monitor(redis.port)
        try:
            session_id = await open_session(connection, host)
            call = handshake_call(host, session_id)
            for request_id in range(20):  # warm-up: lazy services start on first use
                await connection.request(call(request_id))
            await monitor.start()

            idle = await monitor.stop_window(await _idle(monitor, idle_seconds))
            idle_rate = len(idle.lines) / idle.seconds if idle.seconds > 0 else 0.0

            busy = await monitor.window()
            for request_id in range(requests):
                await connection.request(call(1000 + request_id))
            busy = await monitor.stop_window(busy)

            lifecycles = await monitor.window()
            for _ in range(sessions):
                lifecycle_id = await open_session(connection, host)
                await connection.request(handshake_call(host, lifecycle_id)(1))
                await close_session(connection, host, lifecycle_id)
            lifecycles = await monitor.stop_window(lifecycles)
        finally:
            await monitor.close()
            await connection.close()

    return RedisCost(
        requests=requests,
        sessions=sessions,
        idle_per_second=idle_rate,
        per_request=max(0.0, len(busy.lines) - idle_rate * busy.seconds) / requests,
        per_request_on_session_keys=busy.mentioning(session_id) / requests,
        request_commands=busy.commands(),
        per_lifecycle=max(0.0, len(lifecycles.lines) - idle_rate * lifecycles.seconds) / sessions,
        lifecycle_commands=lifecycles.commands(),
    )


async def _idle(monitor: Monitor, seconds: float) -> Window:
    window = await monitor.window()
    await asyncio.sleep(seconds)
    return window
