"""The authorization server's URLs: /oauth/... and the RFC 8414 metadata at the root.

DOT's views reverse each other as `oauth2_provider:<name>`, so they keep that
namespace and those names; the paths are ours.
"""

from django.urls import include, path
from oauth2_provider import views as dot

from oauth_app import views

dot_patterns = [
    path(".well-known/oauth-authorization-server", views.MetadataView.as_view(), name="oauth-server-metadata"),
    path("oauth/authorize", views.ConsentView.as_view(), name="authorize"),
    path("oauth/token", dot.TokenView.as_view(), name="token"),
    path("oauth/revoke", dot.RevokeTokenView.as_view(), name="revoke-token"),
    path("oauth/introspect", dot.IntrospectTokenView.as_view(), name="introspect"),
    path("oauth/register", views.RegistrationView.as_view(), name="dcr-register"),
    path(
        "oauth/register/<str:client_id>",
        dot.DynamicClientRegistrationManagementView.as_view(),
        name="dcr-register-management",
    ),
    path("oauth/jwks", views.jwks, name="jwks-info"),
]

urlpatterns = [
    path("", include((dot_patterns, "oauth2_provider"))),
    path("oauth/login", views.LoginView.as_view(), name="oauth-login"),
]
