"""The /graphql HTTP view: strawberry's async view, GraphiQL only when DEBUG is on.

CSRF: the view is exempt from Django's CSRF check, on purpose. CSRF abuses
credentials a browser attaches by itself (cookies); this API reads none (no
session, no user), so a forged request can do nothing an anonymous one
cannot, and non-browser clients have no CSRF token to send. It also stays
unforgeable should cookie authentication ever arrive: POST bodies are read
only as `application/json` (strawberry refuses other content types; multipart
uploads stay off), which a cross-site form cannot send and cross-site
JavaScript cannot send without a CORS preflight we never approve; GET may only
run queries, never mutations.
"""

from __future__ import annotations

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import AsyncGraphQLView
from strawberry.http.base import BaseRequestProtocol

from .schema import schema


class GraphQLView(AsyncGraphQLView):
    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Read per request, not at import: settings may differ by then (tests).
        return bool(settings.DEBUG) and super().should_render_graphql_ide(request)


graphql_view = csrf_exempt(GraphQLView.as_view(schema=schema, multipart_uploads_enabled=False))
