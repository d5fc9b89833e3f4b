"""Plain Django views of the sessions app."""

import asyncio

from django.http import HttpRequest, JsonResponse

from sessions_app.session.manager import session_manager


async def healthz(request: HttpRequest) -> JsonResponse:
    """For the load balancer: 200 while this node takes new work, 503 while it drains."""
    manager = session_manager()
    manager.start()
    node = manager.node
    body = {
        "status": "draining" if node.draining else "ok",
        "node": node.node_id,
        "sessions": len(manager),
        # Every session owns tasks; a count that only grows is a leak.
        "tasks": len(asyncio.all_tasks()),
    }
    return JsonResponse(body, status=503 if node.draining else 200)
