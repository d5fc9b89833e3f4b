"""A served request leaves nothing of ours for the cyclic garbage collector.

Objects in a reference cycle outlive their request until a collection finds
them, and every collection walks what the young generations hold: a request
that leaves its consumer in a cycle makes collections both more frequent and
longer (in the 2026-07-28 era this was about a seventh of the application's
CPU per call). The probe serves requests in a fresh interpreter with the
collector off and DEBUG_SAVEALL on, so a final collection puts everything that
only it could free in `gc.garbage`, and names what is ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.nodes import REPO, TEST_NODE_DEFAULTS

PROBE = """
import asyncio, gc, json
from mcpsite.asgi import application
from bench import app_only
from bench.messages import handshake_call, initialize_request, initialized_request, modern_call

async def main():
    _, headers, _ = await app_only.call(application, initialize_request(app_only.HOST))
    session_id = headers[b"mcp-session-id"].decode()
    await app_only.call(application, initialized_request(app_only.HOST, session_id))
    calls = {"handshake": handshake_call(app_only.HOST, session_id), "modern": modern_call(app_only.HOST)}[ERA]
    for request_id in range(20):  # warm: caches filled, lazily built objects built
        await app_only.call(application, calls(request_id))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    answers = []
    for request_id in range(50):
        status, _, body = await app_only.call(application, calls(request_id))
        answers.append(status == 200 and b'"isError":false' in body)
    gc.collect()
    ours = sorted({
        f"{type(each).__module__}.{type(each).__qualname__}"
        for each in gc.garbage
        if type(each).__module__.startswith(("sessions_app", "mcpsite"))
    })
    print(json.dumps({"answered": all(answers), "ours": ours}))

asyncio.run(main())
"""


@pytest.mark.parametrize("era", ["handshake", "modern"])
def test_a_served_tools_call_leaves_nothing_of_ours_in_a_cycle(era: str) -> None:
    env = {
        **os.environ,
        **TEST_NODE_DEFAULTS,
        "DJANGO_DEBUG": "1",
        "MCP_JSON_RESPONSE": "1",
        "MCP_METRICS_PORT": "0",
        "MCP_MAX_SESSIONS_PER_CLIENT": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", f"ERA = {era!r}\n{PROBE}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["answered"], "the probe's calls were not answered: it measured nothing"
    assert outcome["ours"] == []
