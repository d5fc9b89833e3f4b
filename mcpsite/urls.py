"""Django URLs. /mcp never reaches these: mcpsite.asgi routes it to the MCP consumer."""

from django.contrib import admin
from django.urls import path

from sessions_app.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
