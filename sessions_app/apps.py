from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "MCP sessions"

    def ready(self) -> None:
        # Wiring, not work: requests relayed from other nodes enter through the
        # endpoint, like requests from a socket. The cluster layer (the inbox)
        # knows nothing of HTTP; the relay gets the entry point from here.
        from sessions_app.http import endpoint, relay

        relay.install(serve=endpoint.serve)
