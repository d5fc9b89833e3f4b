"""The /graphql HTTP view: strawberry's async view, GraphiQL when GRAPHQL_GRAPHIQL is on (DEBUG's default).

GraphiQL's page is our template, graphql_app/templates/graphql/graphiql.html
(strawberry renders that name when it exists): it loads GraphiQL and React from
the node's own static files, never from a CDN (graphql_app/graphiql/).

Who may run what is decided in access.py: bearer tokens, or a staff session
that passes the CSRF check. The view itself is exempt from Django's CSRF
middleware because token and anonymous callers have no CSRF token to send;
`access.identify` runs the same check for the one kind of caller a forged
request could borrow, the cookie-carrying staff browser. POST bodies are read
only as `application/json` (strawberry refuses other content types; multipart
uploads stay off), which a cross-site form cannot send; GET may only run
queries, never mutations. A POST with an `Idempotency-Key` runs once per
caller and key (idempotency.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import AsyncGraphQLView
from strawberry.http.base import BaseRequestProtocol

from . import idempotency, limits
from .access import Caller, identify
from .schema import schema


class GraphQLView(AsyncGraphQLView):
    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Read per request, not at import: settings may differ by then (tests).
        return bool(settings.GRAPHQL_GRAPHIQL) and super().should_render_graphql_ide(request)

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        caller = await identify(request)
        if not isinstance(caller, Caller):
            return caller
        request.graphql_caller = caller  # type: ignore[attr-defined]  # read by access.RequireScopes
        key = request.headers.get(idempotency.HEADER)
        if key is None or request.method != "POST":
            return await super().dispatch(request, *args, **kwargs)
        claim = await idempotency.claim(caller.name, key, request.body)
        if not isinstance(claim, idempotency.Claim):
            return claim  # the stored answer, or why the key cannot be used
        try:
            response = await super().dispatch(request, *args, **kwargs)
        except BaseException:
            await claim.release()
            raise
        await claim.settle(response)
        return response

    def encode_json(self, data: object) -> str | bytes:
        encoded = super().encode_json(data)
        if len(encoded) > settings.GRAPHQL_MAX_RESPONSE_BYTES:
            # ASCII (json.dumps escapes the rest), so its length is its size in bytes.
            return super().encode_json(limits.too_large(len(encoded)))
        return encoded


graphql_view = csrf_exempt(GraphQLView.as_view(schema=schema, multipart_uploads_enabled=False))
