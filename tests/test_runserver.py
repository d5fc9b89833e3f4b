"""`make run`'s server: `manage.py runserver` (daphne's, with the autoreloader) serves /healthz, /mcp and /graphql."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.mcp_http import BASE_HEADERS, initialize_body
from tests.nodes import REPO, TEST_NODE_DEFAULTS, free_port, manage


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runserver")


@pytest.fixture(scope="module")
def dev_server(workdir: Path) -> Iterator[str]:
    env = {
        **os.environ,
        **TEST_NODE_DEFAULTS,
        "DJANGO_DEBUG": "1",
        "DJANGO_SQLITE_PATH": str(workdir / "db.sqlite3"),
        "MCP_SERVER": "graphql_app.mcp.server.server",
    }
    # As `make run` has it: no MCP_AUTH, so DJANGO_DEBUG's default (off) applies.
    env.pop("MCP_AUTH", None)
    manage(env, "migrate", "--noinput")
    port = free_port()
    with (workdir / "runserver.log").open("wb") as log:
        # The autoreloader runs the server in a thread, unlike daphne in production.
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        # Wait for the port only: the first HTTP answer is the test's to judge.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


def test_health_mcp_and_graphql_answer(dev_server: str) -> None:
    # The very first request starts the node's services; it must not fail.
    assert httpx.get(f"{dev_server}/healthz").status_code == 200
    initialized = httpx.post(f"{dev_server}/mcp", json=initialize_body(), headers=BASE_HEADERS)
    assert initialized.status_code == 200
    assert "mcp-session-id" in initialized.headers
    answer = httpx.post(f"{dev_server}/graphql", json={"query": "{ categoryCounts { category count } }"})
    assert answer.status_code == 200
    assert "errors" not in answer.json()


def test_it_says_at_start_that_authorization_is_off(dev_server: str, workdir: Path) -> None:
    assert httpx.get(f"{dev_server}/healthz").status_code == 200
    assert "Authorization is OFF (MCP_AUTH=off)" in (workdir / "runserver.log").read_text(errors="replace")


def test_an_oversized_mcp_body_still_gets_the_json_413(dev_server: str) -> None:
    """Stock daphne reads the whole body first; the consumer's own check answers with the same 413."""
    body = b'{"pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    answer = httpx.post(f"{dev_server}/mcp", content=body, headers=BASE_HEADERS)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == -32600
