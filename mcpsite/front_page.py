"""The front page at `/`: what this node serves and how to connect to it, for a person with a browser.

Every URL on it is built from the request (`build_absolute_uri`: the Host the
browser sent, and https when DJANGO_BEHIND_TLS_PROXY trusts the proxy's
X-Forwarded-Proto), so the snippets name the endpoint as this reader reaches it.

It is public, so it shows only what is public anyway or about the request
itself: this node's id and route (every session id starts with the route, and
/healthz names the node), the protocol versions, whether tokens are required
and where they come from (what a 401 and the metadata documents say), and
two counts. Never a session id, a principal, a key or secret, another node's
name or address, or any other setting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

from sessions_app.auth.conf import AuthMode, auth_settings
from sessions_app.cluster.registry import RegistryUnavailable
from sessions_app.session.manager import SessionManager, session_manager

logger = logging.getLogger(__name__)

# The most the page waits for the registry before it says "unknown".
REGISTRY_PATIENCE = 2.0
# The name the desktop hosts' configuration gives this server.
SERVER_NAME = "mcpsite"
# The documentation, as paths in the repository (the site serves none of it).
DOCS = (
    ("README.md", "start here: make run, make test, make cluster"),
    ("docs/architecture.md", "how the endpoint, sessions and streams work"),
    ("docs/sessions.md", "sessions across a cluster, and every failure a client can see"),
    ("docs/mcp-server.md", "the decision log's tools, resources and prompts"),
    ("docs/graphql.md", "the GraphQL API at /graphql"),
    ("docs/authorization.md", "tokens, the embedded authorization server, connecting a client"),
    ("docs/errors.md", "every error a client can see"),
    ("docs/settings.md", "every setting"),
    ("docs/deploy.md", "three nodes behind Traefik, static files, production"),
    ("docs/operations.md", "logs, metrics, Prometheus, the alerts and the dashboard"),
)


@dataclass(frozen=True)
class Snippets:
    python: str
    desktop: str
    curl: str


@never_cache
async def front_page(request: HttpRequest) -> HttpResponse:
    manager = session_manager()
    manager.start()
    mcp_url = request.build_absolute_uri("/mcp")
    auth = auth_settings()
    context: dict[str, object] = {
        "node_id": manager.node.node_id,
        "node_route": manager.settings.node_route,
        "status": "draining" if manager.node.draining else "full" if manager.full else "serving",
        "mcp_url": mcp_url,
        "handshake_versions": HANDSHAKE_PROTOCOL_VERSIONS,
        "stateless_versions": MODERN_PROTOCOL_VERSIONS,
        "sessions": len(manager),
        "nodes_alive": await _nodes_alive(manager),
        "auth_on": auth.enabled,
        "auth_embedded": auth.mode is AuthMode.EMBEDDED and settings.OAUTH_SERVER,
        "scopes": f"{auth.read_scope} {auth.write_scope}",
        "snippets": snippets(mcp_url, token=auth.enabled),
        "graphiql": settings.GRAPHQL_GRAPHIQL,
        "docs": DOCS,
    }
    if auth.enabled:
        context["resource_metadata_url"] = request.build_absolute_uri("/.well-known/oauth-protected-resource/mcp")
        context["oauth_endpoints"] = _oauth_endpoints(request) if context["auth_embedded"] else []
    # Rendered in a thread: a template that touches the user or the messages reads the database.
    response: HttpResponse = await sync_to_async(render)(request, "front_page.html", context)
    return response


async def _nodes_alive(manager: SessionManager) -> int | None:
    """How many nodes have a live heartbeat, this one counted (it is serving this page); None if unknown."""
    try:
        async with asyncio.timeout(REGISTRY_PATIENCE):
            live = await manager.node.registry.alive_nodes()
    except (RegistryUnavailable, TimeoutError) as exc:
        # Anyone can ask for the page; the outage itself is logged by the node's heartbeat.
        logger.debug("The front page could not count live nodes: %s", exc or "the registry did not answer in time")
        return None
    return len(set(live) | {manager.node.node_id})


def _oauth_endpoints(request: HttpRequest) -> list[tuple[str, str]]:
    """The embedded authorization server's public endpoints, as this reader reaches them."""
    names = [
        ("Authorization server metadata (RFC 8414)", "oauth2_provider:oauth-server-metadata"),
        ("Authorization (log in and consent)", "oauth2_provider:authorize"),
        ("Token", "oauth2_provider:token"),
    ]
    if settings.OAUTH_DCR:
        names.append(("Client registration (RFC 7591)", "oauth2_provider:dcr-register"))
    return [(label, request.build_absolute_uri(reverse(name))) for label, name in names]


def snippets(mcp_url: str, *, token: bool) -> Snippets:
    """Ready-to-copy ways to reach `mcp_url`; with `token`, each sends a bearer token the reader provides."""
    python_url = json.dumps(mcp_url)
    if token:
        python = f"""import os

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

URL = {python_url}
TOKEN = os.environ["MCP_TOKEN"]  # see "Tokens" below


async def main() -> None:
    async with httpx2.AsyncClient(headers={{"Authorization": f"Bearer {{TOKEN}}"}}) as http:
        async with Client(streamable_http_client(URL, http_client=http)) as client:
            tools = await client.list_tools()
            print([tool.name for tool in tools.tools])


anyio.run(main)
"""
    else:
        python = f"""import anyio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

URL = {python_url}


async def main() -> None:
    async with Client(streamable_http_client(URL)) as client:
        tools = await client.list_tools()
        print([tool.name for tool in tools.tools])


anyio.run(main)
"""
    desktop = json.dumps({"mcpServers": {SERVER_NAME: {"url": mcp_url}}}, indent=2)
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "curl", "version": "1"},
        },
    }
    lines = [
        f"curl -si {shlex.quote(mcp_url)}",
        "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'",
        *(['-H "Authorization: Bearer $MCP_TOKEN"'] if token else []),
        f"-d {shlex.quote(json.dumps(initialize, separators=(',', ':')))}",
    ]
    curl = " \\\n  ".join(lines)
    return Snippets(python=python, desktop=desktop, curl=curl)
