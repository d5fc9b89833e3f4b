"""`manage.py mint_token <username> --scope "mcp:read mcp:write" [--seconds N]`: print an access token.

For operators and newcomers: a token for curl without a browser flow. It is
issued to an internal client and stored like any other, so it works on
every node sharing this database and key, and revoking it works.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from oauth2_provider.models import get_application_model

from oauth_app import tokens

# The internal client minted tokens name as `client_id`.
CLIENT_ID = "mcpsite-mint-token"


class Command(BaseCommand):
    help = "Print an access token for a user, valid on every node."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--scope", default=settings.MCP_AUTH_READ_SCOPE, help="space-separated scopes")
        parser.add_argument("--seconds", type=int, default=settings.OAUTH_ACCESS_TOKEN_SECONDS)

    def handle(self, *args: Any, username: str, scope: str, seconds: int, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        if not user.is_active:
            raise CommandError(f"user {username!r} is not active")
        scopes = scope.split()
        unknown = sorted(set(scopes) - set(settings.OAUTH2_PROVIDER["SCOPES"]))
        if unknown or not scopes:
            raise CommandError(f"unknown scope(s) {' '.join(unknown) or '(none given)'}")
        if seconds <= 0:
            raise CommandError("--seconds must be positive")
        application = internal_application()
        self.stdout.write(tokens.mint(user, application, scopes, seconds))


def internal_application() -> Any:
    application_model = get_application_model()
    application, _ = application_model.objects.get_or_create(
        client_id=CLIENT_ID,
        defaults={
            "name": "manage.py mint_token",
            "client_type": application_model.CLIENT_CONFIDENTIAL,
            # No flow reaches it: tokens are only minted by the command.
            "authorization_grant_type": application_model.GRANT_CLIENT_CREDENTIALS,
        },
    )
    return application
