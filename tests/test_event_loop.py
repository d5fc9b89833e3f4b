"""The production server runs Twisted on the event loop MCP_EVENT_LOOP names (uvloop by default)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.nodes import REPO, TEST_NODE_DEFAULTS

# Runs the server module as `python -m mcpsite.http_server --help` does, then names
# the class of the loop daphne made for Twisted as it was imported.
PROBE = """
import runpy, sys
sys.argv = ["mcpsite.http_server", "--help"]
try:
    runpy.run_module("mcpsite.http_server", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
loop = sys.modules["daphne.server"].twisted_loop
print(type(loop).__module__ + "." + type(loop).__qualname__)
"""


def _loop_of_server(probe: str = PROBE, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={**os.environ, **TEST_NODE_DEFAULTS, "DJANGO_DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("setting", "loop_class"),
    [("", "uvloop.Loop"), ("uvloop", "uvloop.Loop"), ("asyncio", "asyncio.unix_events._UnixSelectorEventLoop")],
)
def test_the_server_runs_on_the_loop_the_setting_names(setting: str, loop_class: str) -> None:
    result = _loop_of_server(MCP_EVENT_LOOP=setting)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == loop_class


def test_an_unknown_loop_is_refused_by_name() -> None:
    result = _loop_of_server(MCP_EVENT_LOOP="trio")
    assert result.returncode != 0
    assert "MCP_EVENT_LOOP must be one of uvloop, asyncio, not 'trio'" in result.stderr


def test_the_servers_thread_names_asyncio_to_sniffio_without_sniffing() -> None:
    # Outside any running loop sniffio would raise: the answer comes from what `install` said.
    result = _loop_of_server(PROBE + "import sniffio; print(sniffio.current_async_library())\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "asyncio"
