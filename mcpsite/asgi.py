"""ASGI entry point: /mcp goes to the MCP consumer, everything else to Django.

Production: `python -m mcpsite.http_server mcpsite.asgi:application` (daphne).
"""

import gc
import os

from mcpsite.request_threads import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")
# Set up Django (apps, settings) before importing anything that uses models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from mcpsite.finish_in_flight import FinishInFlight  # noqa: E402
from sessions_app.auth.startup import announce_authorization  # noqa: E402
from sessions_app.http.consumer import McpConsumer  # noqa: E402
from sessions_app.metrics import serve_metrics, watch_garbage_collection  # noqa: E402
from sessions_app.session.manager import session_manager  # noqa: E402

announce_authorization()
watch_garbage_collection()
if settings.MCP_METRICS_PORT:
    serve_metrics(
        settings.MCP_METRICS_HOST, settings.MCP_METRICS_PORT, lambda: len(session_manager()), settings.MCP_MAX_SESSIONS
    )

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                path("mcp", McpConsumer.as_asgi()),
                re_path(r"", FinishInFlight(django_asgi_app)),  # type: ignore[arg-type]  # an ASGI app, not a view
            ]
        ),
    }
)

# Everything loaded by now (Django, the apps, the SDK: about 140,000 objects)
# lives as long as the process. Freezing it keeps the cyclic collector from
# walking all of it on every full collection, which cost 50-260 us per MCP
# request under load before (measured with gc.callbacks; see docs/benchmarks.md).
gc.freeze()
