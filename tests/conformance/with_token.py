"""A conformance target with authorization on: a node requiring tokens, behind a Traefik that adds one.

The suite's server scenarios send no `Authorization` header and have no
option to. So the node (embedded authorization server, tokens required) sits
behind a real Traefik whose `headers` middleware adds a bearer token minted
with `manage.py mint_token`, as an API gateway holding a service token would.
Everything else passes through untouched: Host, the body, the SSE streams.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx

from deploy.cluster import traefik_binary
from tests.nodes import LOOPBACK, Node, free_port, manage

USERNAME = "conformance-suite"
DYNAMIC_CONFIG = """\
http:
  routers:
    mcp:
      entryPoints: [web]
      rule: "PathPrefix(`/`)"
      service: node
      middlewares: [bearer]
  middlewares:
    bearer:
      headers:
        customRequestHeaders:
          Authorization: "Bearer {token}"
  services:
    node:
      loadBalancer:
        servers:
          - url: "http://{loopback}:{node_port}"
"""


@contextlib.contextmanager
def gateway_to_authorizing_node(workdir: Path) -> Iterator[str]:
    """Start the node and the gateway; yield the gateway's MCP URL (also the node's canonical resource URI)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    resource = f"http://{LOOPBACK}:{port}/mcp"
    env = {
        "MCP_SERVER": "tests.conformance.server.server",
        "MCP_AUTH": "embedded",
        "MCP_RESOURCE_URI": resource,
        "DJANGO_SQLITE_PATH": str(workdir / "db.sqlite3"),
    }
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", f"from django.contrib.auth.models import User; User.objects.create_user({USERNAME!r})")
    # The fixture's tools declare no access, so they need the write scope.
    token = manage(env, "mint_token", USERNAME, "--scope", "mcp:read mcp:write").strip()
    node = Node(env=env, log_path=workdir / "daphne-with-token.log").start()
    config = workdir / "traefik-dynamic.yml"
    config.write_text(DYNAMIC_CONFIG.format(token=token, loopback=LOOPBACK, node_port=node.port), encoding="utf-8")
    log = (workdir / "traefik.log").open("ab")
    traefik = subprocess.Popen(
        [
            str(traefik_binary()),
            f"--entryPoints.web.address={LOOPBACK}:{port}",
            f"--providers.file.filename={config}",
            "--log.level=WARN",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_routed(f"http://{LOOPBACK}:{port}/healthz", traefik)
        yield resource
    finally:
        traefik.terminate()
        traefik.wait(timeout=10)
        log.close()
        node.stop()


def _wait_until_routed(url: str, traefik: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if traefik.poll() is not None:
            raise RuntimeError(f"traefik exited with status {traefik.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"traefik did not route {url} within {timeout:.0f}s")
