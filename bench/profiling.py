"""Where our node's CPU goes under load: py-spy samples while the harness drives JSON tools/calls.

py-spy records collapsed stacks (`--format raw`) from the running daphne process;
each sample is charged to its innermost frame, summed by function and by the
package that frame lives in.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

from . import servers
from .load import run_load
from .messages import handshake_call, modern_call, open_session
from .rawhttp import Connection

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")
# Only the event loop's thread serves requests; waiting in epoll is idle time.
_MAIN_THREAD = "_run_module_as_main"
_IDLE_LEAF = "select"
# Named costs, charged inclusively: the share of busy samples with such a frame anywhere on
# the stack, so each includes what it calls (our consumer runs inside Channels' machinery).
INCLUSIVE = {
    "Twisted request parsing and response writing (twisted/web)": "(twisted/web/",
    "of which Content-Type parsed as a form via `email` (twisted/web/http.py)": "(email/",
    "daphne's HTTP protocol, the ASGI bridge (daphne/http_protocol.py)": "(daphne/http_protocol.py",
    "our transport (sessions_app/)": "(sessions_app/",
    "the SDK's dispatch and handlers (mcp/)": "(mcp/",
    "pydantic validation and serialization": "(pydantic/",
    "Channels consumer machinery (channels/)": "(channels/",
}


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


async def profile(log_dir: Path, *, seconds: float, era: str = "handshake", top: int = 12) -> list[str]:
    """Markdown lines naming the top costs, or why there are none."""
    binary = py_spy()
    if binary is None:
        return ["Not profiled: py-spy is not installed (`pip install -r requirements-dev.txt`)."]
    raw = log_dir / "py-spy.txt"
    with servers.our_node(log_dir, json_response=True) as node:
        host = f"{servers.LOOPBACK}:{node.port}"
        connection = Connection(servers.LOOPBACK, node.port)
        try:
            factory = handshake_call(host, await open_session(connection, host)) if era == "handshake" else None
        finally:
            await connection.close()
        factory = factory or modern_call(host)
        await run_load(servers.LOOPBACK, node.port, factory, 300, 1)  # warm-up
        recorder = await asyncio.create_subprocess_exec(
            binary, "record", "--format", "raw", "--rate", "250", "--duration", str(int(seconds)),
            "--pid", str(node.pid), "--output", str(raw),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(1000):  # bounded: stops once the recorder is done
            await run_load(servers.LOOPBACK, node.port, factory, 200, 1)
            if recorder.returncode is not None:
                break
        await recorder.wait()
    if recorder.returncode != 0 or not raw.exists():
        return [f"Not profiled: py-spy exited with {recorder.returncode} (ptrace not permitted?)."]
    return summarize(raw.read_text(), era=era, top=top)


# The HTTP server's own work, not shared with anything else: samples outside the ASGI
# application (reading, parsing, the reactor), plus daphne writing the application's answer.
_APPLICATION_ENTRY = "ProtocolTypeRouter.__call__ (channels/routing.py"
_APPLICATION_TASKS = ("(sessions_app/", "(mcp/")
_SERVER_WRITE = "handle_reply (daphne/"
SERVER_ONLY = "daphne and Twisted alone: outside the application, plus writing its answers"


def _server_only(stack: str) -> bool:
    if _SERVER_WRITE in stack:
        return True
    return _APPLICATION_ENTRY not in stack and not any(marker in stack for marker in _APPLICATION_TASKS)


def summarize(collapsed: str, *, era: str, top: int) -> list[str]:
    functions: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    server_only = 0
    total = idle = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack.startswith(_MAIN_THREAD) or not count_text.isdigit():
            continue
        count = int(count_text)
        match = _FRAME.match(stack.split(";")[-1])
        function, file = (match["function"], match["file"]) if match else (stack.split(";")[-1], "")
        if function.endswith(_IDLE_LEAF) and file == "selectors.py":
            idle += count
            continue
        package = file.split("/", 1)[0].removesuffix(".py") if "/" in file or file.endswith(".py") else file
        functions[f"`{function}` ({file})"] += count
        inclusive.update({label: count for label, marker in INCLUSIVE.items() if marker in stack})
        server_only += count if _server_only(stack) else 0
        packages[package] += count
        total += count
    if not total:
        return ["Not profiled: py-spy recorded no samples."]
    share = ", ".join(f"{name} {count * 100 / total:.0f} %" for name, count in packages.most_common(10))
    lines = [
        f"Sequential JSON `tools/call` ({era} era) against our node alone. {total} busy samples of daphne's "
        f"event-loop thread ({idle} more were idle in epoll), each charged to its innermost frame. "
        f"By package: {share}.",
        "",
        "| Named cost (inclusive) | Share |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {inclusive[label] * 100 / total:.1f} % |" for label in INCLUSIVE]
    lines.append(f"| **{SERVER_ONLY}** (not inclusive: no other row's work) | {server_only * 100 / total:.1f} % |")
    lines += ["", "| Innermost frame | Share |", "|---|---:|"]
    lines += [f"| {name} | {count * 100 / total:.1f} % |" for name, count in functions.most_common(top)]
    return lines
