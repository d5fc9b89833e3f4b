from django.apps import AppConfig
from django.conf import settings


class OAuthAppConfig(AppConfig):
    name = "oauth_app"
    verbose_name = "Embedded authorization server"

    def ready(self) -> None:
        # Without debugging, a key file that cannot be read must stop the node
        # now, not at the first token request an hour later.
        if settings.OAUTH_SERVER and not settings.DEBUG:
            from oauth_app import keys

            keys.signing_key()
