"""Instructions per request, counted by valgrind's callgrind: figures no neighbour on the machine can move.

CPU time per request on a shared machine drifts by tens of percent from one
spell to the next. callgrind counts the instructions a server executes in user
space, which is the same on every run of the same code and inputs, whatever
else the machine is doing. Each server (ours, the reference under uvicorn, the
floor) runs under callgrind with instrumentation off while it starts, so
startup costs nothing to measure; it is switched on for a warm-up, the counters
are zeroed, and the measured requests are dumped as one part per era.

callgrind also simulates the caches. The last-level cache is set to 1 MiB, a
share of a real server's L3 when other processes use it too. A server whose
requests each reach into more memory than that finds most of it evicted by the
next request, so its misses jump: they show what the instruction count does
not, that such a server runs slower per instruction.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import servers
from .throughput import ERAS, Target

SIDES: dict[str, Callable[..., servers.ServerProcess]] = {
    "ours": servers.our_node,
    "reference": servers.reference,
    "floor": servers.floor,
}
LAST_LEVEL_CACHE = "1048576,16,64"  # bytes, ways, line size
WARMUP = 50
START_TIMEOUT = 300.0  # seconds: a server starts several times slower under valgrind


@dataclass(frozen=True)
class Counted:
    instructions: float  # per request
    last_level_misses: float  # per request, with the simulated 1 MiB last-level cache


@dataclass(frozen=True)
class Instructions:
    """Per side ("ours", "reference", "floor"), per era: what one JSON tools/call costs."""

    counts: dict[str, dict[str, Counted]]
    requests: int

    def ratio(self, era: str) -> float:
        """Our instructions over the reference's (<1: ours executes fewer)."""
        return self.counts["ours"][era].instructions / self.counts["reference"][era].instructions


def missing() -> str:
    """Why the count cannot run here, or "" if it can."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return "valgrind is not installed (Debian: valgrind)."
    return ""


async def measure(log_dir: Path, *, requests: int) -> Instructions:
    counts = {side: await _count(log_dir, side, make, requests) for side, make in SIDES.items()}
    return Instructions(counts, requests)


async def _count(
    log_dir: Path, side: str, make: Callable[..., servers.ServerProcess], requests: int
) -> dict[str, Counted]:
    process = make(log_dir, json_response=True)
    output = log_dir / f"callgrind-{side}.out"
    process.argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--cache-sim=yes",
        f"--LL={LAST_LEVEL_CACHE}",
        f"--callgrind-out-file={output}",
        *process.argv,
    ]
    process.launch()
    try:
        process.wait_listening(START_TIMEOUT)
        target = Target(process)
        await target.prepare()
        await _control(process.pid, "--instr=on")
        counted: dict[str, Counted] = {}
        for part, era in enumerate(ERAS, start=1):
            await target.run(era, WARMUP, 1)
            await _control(process.pid, "--zero")
            stats = await target.run(era, requests, 1)
            if stats.errors:
                raise RuntimeError(f"{side}: {stats.errors} of the counted {era} requests failed: {stats.first_error}")
            await _control(process.pid, "--dump")
            counted[era] = _read(Path(f"{output}.{part}"), requests)
        return counted
    finally:
        process.stop(timeout=60)


async def _control(pid: int, action: str) -> None:
    command = await asyncio.create_subprocess_exec(
        "callgrind_control", action, str(pid), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, error = await command.communicate()
    if command.returncode != 0:
        raise RuntimeError(f"callgrind_control {action} {pid} failed: {error.decode(errors='replace')}")


def _read(dump: Path, requests: int) -> Counted:
    """Per-request figures from a callgrind dump's totals (its `events:` and `summary:` lines)."""
    text = dump.read_text(errors="replace")
    events = _line(text, "events").split()
    totals = dict(zip(events, (int(value) for value in _line(text, "summary").split()), strict=True))
    misses = totals.get("DLmr", 0) + totals.get("DLmw", 0) + totals.get("ILmr", 0)
    return Counted(instructions=totals["Ir"] / requests, last_level_misses=misses / requests)


def _line(text: str, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", text, re.M)
    if found is None:
        raise RuntimeError(f"no {name!r} line in the callgrind dump")
    return found.group(1)
