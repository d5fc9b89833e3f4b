"""ASGI entry point: /mcp goes to the MCP consumer, everything else to Django.

Production: `daphne mcpsite.asgi:application`.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")
# Set up Django (apps, settings) before importing anything that uses models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from sessions_app.consumer import McpConsumer  # noqa: E402
from sessions_app.misroute import MisrouteLoggingMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                path("mcp", MisrouteLoggingMiddleware(McpConsumer.as_asgi())),  # type: ignore[arg-type]
                re_path(r"", django_asgi_app),  # type: ignore[arg-type]  # an ASGI app, not a view
            ]
        ),
    }
)
