"""The pages and endpoints DOT does not give us as we need them.

DOT's own views serve the token, revocation and introspection endpoints; these
add the admin-styled consent and login pages, `jwks_uri` in the metadata, the
JWK Set, and registration's own refusals.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET
from oauth2_provider.models import get_application_model
from oauth2_provider.views import AuthorizationView, OAuthServerMetadataView
from oauth2_provider.views.dynamic_client_registration import DynamicClientRegistrationView

from oauth_app import keys, registration, resources


def with_issuer(uri: str) -> str:
    """`uri` with exactly one RFC 9207 `iss` parameter, ours."""
    parts = urlsplit(uri)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "iss"]
    query.append(("iss", settings.OAUTH_ISSUER))
    return urlunsplit(parts._replace(query=urlencode(query)))


class ConsentView(AuthorizationView):  # type: ignore[misc]
    """The authorization endpoint: asks the logged-in user to allow or deny the client."""

    template_name = "oauth_app/authorize.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        context["title"] = "Authorize an application"
        context["default_resource"] = resources.default_resource()
        return context

    # A POST that did not come from our consent page (tampered, or replayed for
    # a client since deleted) gets a 400 page: DOT would answer 200 or a 500.

    def form_invalid(self, form: Any) -> HttpResponse:
        return self._refuse(form, "the consent form is incomplete")

    def form_valid(self, form: Any) -> HttpResponse:
        if not get_application_model().objects.filter(client_id=form.cleaned_data["client_id"]).exists():
            return self._refuse(form, "unknown client_id")
        response: HttpResponse = super().form_valid(form)
        return response

    def _refuse(self, form: Any, description: str) -> HttpResponse:
        error = {"error": "invalid_request", "description": description}
        response: HttpResponse = self.render_to_response(self.get_context_data(form=form, error=error), status=400)
        return response

    def redirect(self, redirect_to: str, application: Any) -> HttpResponse:
        # DOT adds `iss` to codes only; RFC 9207 wants it on error responses too.
        response: HttpResponse = super().redirect(with_issuer(redirect_to), application)
        return response


class LoginView(auth_views.LoginView):
    """The admin's login page for every active user: the admin's own takes staff only."""

    template_name = "admin/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        context.update(title="Log in", app_path=self.request.get_full_path())
        return context


class MetadataView(OAuthServerMetadataView):  # type: ignore[misc]
    """RFC 8414 metadata: DOT's, plus `jwks_uri` (DOT adds it only with OpenID Connect on)."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().get(request, *args, **kwargs)
        data = json.loads(response.content)
        data["jwks_uri"] = settings.OAUTH_ISSUER + reverse("oauth2_provider:jwks-info")
        response.content = json.dumps(data).encode()
        return response


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(keys.public_jwks())
    response["Access-Control-Allow-Origin"] = "*"
    # Short: a rotated key must reach verifiers that fetch over HTTP soon.
    response["Cache-Control"] = "public, max-age=300"
    return response


class RegistrationView(DynamicClientRegistrationView):  # type: ignore[misc]
    """RFC 7591 registration, refusing with a precise 400 what DOT would accept or answer with a generic 401."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            metadata = json.loads(request.body)
        except ValueError:
            metadata = None  # DOT answers invalid_client_metadata
        if isinstance(metadata, dict):
            refusal = registration.refusal(metadata)
            if refusal is not None:
                error, description = refusal
                return JsonResponse({"error": error, "error_description": description}, status=400)
        response: HttpResponse = super().post(request, *args, **kwargs)
        return response
