"""Plain Django views of the sessions app."""

from django.http import HttpRequest, JsonResponse

from .conf import mcp_settings
from .session_manager import session_manager


async def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for the load balancer: this node's id and how many sessions it holds."""
    return JsonResponse({"status": "ok", "node": mcp_settings().node_id, "sessions": len(session_manager())})
