"""What the report records about the machine it ran on."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from . import postgres, servers

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
            f"taskset: servers on core {servers.SERVER_CORE}, load generator, Redis and PostgreSQL on core "
            f"{servers.CLIENT_CORE}"
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
        "PostgreSQL (scenario 5)": postgres.version(),
        # PostgreSQL's data directory is in it: on tmpfs a commit's WAL flush would cost nothing.
        "Filesystem of the temporary directory": _filesystem(tempfile.gettempdir()),
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


def _filesystem(path: str) -> str:
    """The type of the filesystem `path` is on, from the longest mount point above it in /proc/self/mounts."""
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                point = fields[1].replace("\\040", " ")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) > len(best):
                    best, kind = point, fields[2]
    except OSError:
        pass  # not Linux: the report says unknown
    return f"{kind} ({path})"
