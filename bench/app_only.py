"""The same `tools/call` requests through each ASGI application in-process, with no HTTP server.

Scenarios 1 and 2 measure whole servers: our application under daphne, the
reference's under uvicorn. This splits the two: each application runs in a
fresh interpreter pinned to the server core, and is called directly with the
very bytes the load generator sends, parsed into an ASGI scope. The CPU time
per request (JSON answers, sequential; the cheapest of many short slices) is what the application costs: our
transport, Channels and the SDK against Starlette and the SDK's own
transport. What the full-server figures add on top of it is the HTTP server.

    python -m bench.app_only ours|reference --requests N --rounds R --warmup W   # prints JSON

With BENCH_AUTHORIZATION set, every request carries it as its Authorization
header (scenario 10, bench/auth_cost.py).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import servers
from .messages import EXPECTED_IN_ANSWER, handshake_call, initialize_request, initialized_request, modern_call

SIDES = ("ours", "reference")
ERAS = ("handshake", "modern")
HOST = f"{servers.LOOPBACK}:8000"
SLICE = 200  # requests timed together
AUTHORIZATION_ENV = "BENCH_AUTHORIZATION"

Asgi = Callable[..., Awaitable[None]]  # an ASGI 3 application
Headers = Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True)
class AppCost:
    """CPU microseconds per request, best round, by era, for each side."""

    ours: dict[str, float]
    reference: dict[str, float]
    requests: int
    rounds: int

    def ratio(self, era: str) -> float:
        """How many of our requests fit in the CPU one reference request takes (>1: ours is cheaper)."""
        return self.reference[era] / self.ours[era] if self.ours[era] else 0.0


def measure(*, requests: int, rounds: int, warmup: int, turns: int = 2) -> AppCost:
    """Each side `turns` times, alternating, so a slow spell of the machine hits both; the cheapest counts."""
    runs = {side: functools.partial(run_side, side, requests, rounds, warmup) for side in SIDES}
    costs = cheapest_of_turns(runs, turns)
    return AppCost(costs["ours"], costs["reference"], requests, rounds * turns)


def cheapest_of_turns(runs: Mapping[str, Callable[[], dict[str, float]]], turns: int) -> dict[str, dict[str, float]]:
    """Each run `turns` times, in turns; the cheapest cost per era of each run counts."""
    costs: dict[str, dict[str, float]] = {name: {} for name in runs}
    order = list(runs)
    for turn in range(turns):
        # Who goes first alternates too, so none always runs on a warmer (or busier) machine.
        for name in order if turn % 2 == 0 else order[::-1]:
            for era, cost in runs[name]().items():
                costs[name][era] = min(costs[name].get(era, cost), cost)
    return costs


def run_side(side: str, requests: int, rounds: int, warmup: int, **extra_env: str) -> dict[str, float]:
    """One side measured in a fresh interpreter pinned to the server core, `extra_env` added to its environment."""
    if side == "ours":
        env = servers.node_env(
            MCP_SERVER=servers.ECHO_SERVER, MCP_JSON_RESPONSE="1", MCP_SHUTDOWN_DRAIN_DELAY="0", **extra_env
        )
    else:
        env = servers.node_env(BENCH_REFERENCE_JSON="1", **extra_env)
    argv = [sys.executable, "-m", "bench.app_only", side, "--requests", str(requests), "--rounds", str(rounds)]
    argv += ["--warmup", str(warmup)]
    result = subprocess.run(
        servers.pinned(argv, servers.SERVER_CORE),
        cwd=servers.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.app_only {side} failed:\n{result.stdout}\n{result.stderr}")
    costs: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return costs


# --- inside the measured interpreter ------------------------------------------


def _load(side: str) -> Asgi:
    if side == "ours":
        from mcpsite.asgi import application

        return application  # type: ignore[no-any-return]  # channels ships no types
    from .reference_app import create_app

    app = create_app()
    # Ours freezes its startup objects (mcpsite/asgi.py); do the same here so
    # neither side pays the collector for walking what it loaded.
    gc.freeze()
    return app


def asgi_request(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """An ASGI HTTP scope and body from request bytes as `bench.rawhttp.render_request` makes them."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *header_lines = head.split(b"\r\n")
    method, path, _ = request_line.split(b" ")
    headers = []
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method.decode(),
        "scheme": "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": (servers.LOOPBACK, 50000),
        "server": (servers.LOOPBACK, 8000),
    }
    return scope, body


async def call(app: Asgi, raw: bytes, extra_headers: Headers = ()) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through `app`, answered as a server would: the body, then a disconnect once it is done."""
    scope, body = asgi_request(raw)
    # Added after parsing, not rendered into `raw`: parsing a token's long line would be harness work on the clock.
    scope["headers"].extend(extra_headers)
    status = 0
    headers: dict[bytes, bytes] = {}
    chunks: list[bytes] = []
    answered = asyncio.Event()
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.update((name.lower(), value) for name, value in message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


def _extra_headers() -> Headers:
    authorization = os.environ.get(AUTHORIZATION_ENV, "")
    return [(b"authorization", authorization.encode())] if authorization else []


async def _measure_here(app: Asgi, requests: int, rounds: int, warmup: int) -> dict[str, float]:
    extra = _extra_headers()
    status, headers, _ = await call(app, initialize_request(HOST), extra)
    session_id = headers.get(b"mcp-session-id", b"").decode()
    if status != 200 or not session_id:
        raise RuntimeError(f"initialize failed: HTTP {status}")
    await call(app, initialized_request(HOST, session_id), extra)
    factories = {"handshake": handshake_call(HOST, session_id), "modern": modern_call(HOST)}
    best: dict[str, float] = {}
    for era, factory in factories.items():
        for request_id in range(warmup):
            status, _, answer = await call(app, factory(request_id), extra)
            if status != 200 or EXPECTED_IN_ANSWER not in answer:
                raise RuntimeError(f"{era} tools/call failed: HTTP {status}: {answer[:200]!r}")
        # Timed in short slices, keeping the cheapest: on a shared machine a
        # neighbour's burst inflates whole rounds, but rarely every slice.
        size = min(SLICE, requests)
        for _ in range(max(1, rounds * requests // size)):
            started = time.process_time()
            for request_id in range(size):
                await call(app, factory(request_id), extra)
            cost = (time.process_time() - started) / size * 1e6
            best[era] = min(best.get(era, cost), cost)
    return best


async def _main_here(side: str, requests: int, rounds: int, warmup: int) -> dict[str, float]:
    app = _load(side)
    if side == "ours":
        return await _measure_here(app, requests, rounds, warmup)
    # The reference's session manager runs inside its lifespan.
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        return await _measure_here(app, requests, rounds, warmup)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.app_only")
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    costs = asyncio.run(_main_here(args.side, args.requests, args.rounds, args.warmup))
    print(json.dumps(costs), flush=True)
    # Sessions and the SDK's tasks would otherwise wind down at exit; nothing is left to measure.
    os._exit(0)


if __name__ == "__main__":
    main()
