"""Plain Django views of the sessions app."""

import asyncio
from urllib.parse import urlsplit

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from sessions_app.auth.resource import resource_server
from sessions_app.cluster.shutdown import announce_refused_health_check
from sessions_app.session.manager import session_manager


async def healthz(request: HttpRequest) -> JsonResponse:
    """For the load balancer: 200 while this node takes new work, 503 while it drains."""
    manager = session_manager()
    manager.start()
    node = manager.node
    # A full node still serves its sessions, so it stays in the pool (a 503 here
    # would also send them elsewhere); it says so, and refuses new sessions itself.
    body = {
        "status": "draining" if node.draining else "full" if manager.full else "ok",
        "node": node.node_id,
        "sessions": len(manager),
        "max_sessions": manager.settings.max_sessions,
        # Every session owns tasks; a count that only grows is a leak.
        "tasks": len(asyncio.all_tasks()),
    }
    if node.draining:
        announce_refused_health_check(manager)
        return JsonResponse(body, status=503)
    return JsonResponse(body)


@require_safe
def protected_resource_metadata(request: HttpRequest, resource_path: str = "") -> JsonResponse:
    """RFC 9728 metadata for /mcp: where its tokens come from and which scopes exist.

    Served at the well-known prefix followed by the resource's path (the URL a
    401's challenge names) and, for clients that only try it, at the bare prefix.
    """
    server = resource_server()
    path = urlsplit(server.settings.resource).path.strip("/")
    if not server.enabled or (resource_path and resource_path.strip("/") != path):
        raise Http404("No protected resource here")
    response = JsonResponse(server.metadata())
    # Public facts that browser-based clients read across origins.
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=3600"
    return response
