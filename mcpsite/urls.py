"""Django URLs. /mcp never reaches these: mcpsite.asgi routes it to the MCP consumer."""

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from graphql_app.api.views import graphql_view
from mcpsite.front_page import front_page
from sessions_app.views import healthz, protected_resource_metadata

urlpatterns: list[URLPattern | URLResolver] = [
    path("", front_page, name="front-page"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("graphql", graphql_view, name="graphql"),
    path(".well-known/oauth-protected-resource", protected_resource_metadata),
    path(".well-known/oauth-protected-resource/<path:resource_path>", protected_resource_metadata),
]
if settings.OAUTH_SERVER:
    # /oauth/... and /.well-known/oauth-authorization-server (see oauth_app/urls.py).
    urlpatterns.append(path("", include("oauth_app.urls")))
