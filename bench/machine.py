"""What the report records about the machine it ran on."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys

from . import servers

PACKAGES = (
    "Django",
    "channels",
    "channels-redis",
    "daphne",
    "Twisted",
    "mcp",
    "starlette",
    "uvicorn",
    "h11",
    "anyio",
    "pydantic",
    "redis",
    # Scenario 10: what verifying a token costs is mostly theirs.
    "PyJWT",
    "cryptography",
)


def describe() -> dict[str, str]:
    facts = {
        "CPU": _cpu_model(),
        "Cores (os.cpu_count / usable)": f"{os.cpu_count()} / {len(os.sched_getaffinity(0))}",
        "Pinning": (
            f"taskset: servers on core {servers.SERVER_CORE}, load generator and Redis on core {servers.CLIENT_CORE}"
            if servers.pinning_available()
            else "none (taskset missing or a single core): client and servers share the CPU"
        ),
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
        "uvicorn event loop / HTTP parser": (
            f"{'uvloop' if importlib.util.find_spec('uvloop') else 'asyncio'} / "
            f"{'httptools' if importlib.util.find_spec('httptools') else 'h11'}"
        ),
        "redis-server": _redis_version(),
    }
    for package in PACKAGES:
        try:
            facts[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            facts[package] = "not installed"
    return facts


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass  # not Linux: fall back to what platform knows
    return platform.processor() or "unknown"


def _redis_version() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        return "not installed"
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return result.stdout.strip().split(" v=")[-1].split()[0] if " v=" in result.stdout else result.stdout.strip()
