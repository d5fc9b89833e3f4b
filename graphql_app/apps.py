from django.apps import AppConfig


class GraphqlAppConfig(AppConfig):
    name = "graphql_app"
    verbose_name = "Architecture decisions"

    def ready(self) -> None:
        # Connects the post_save hook that announces changes to MCP clients.
        from . import changes  # noqa: F401
