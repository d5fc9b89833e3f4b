"""The project's MCP server (the default MCP_SERVER): the decision log, on the same data as GraphQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler

from sessions_app.cluster.change_feed import change_feed

from . import prompts, resources, tools
from .notifications import bus, deliver
from .tools import TOOL_ACCESS

__all__ = ["ADOPTABLE", "TOOL_ACCESS", "server"]

# Another node may adopt this server's sessions (sessions_app/session/adoption.py): what it
# keeps per session is the resource subscriptions, which the session's record carries (the
# list watch comes back with the client's next resources/list, which adoption prompts).
ADOPTABLE = True


@asynccontextmanager
async def lifespan(server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
    """Entered once per process: from now on this node passes changes to its listeners."""
    stop = change_feed().listen(deliver)
    try:
        yield {}
    finally:
        stop()


class DecisionLogServer(Server[Any]):
    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        # The transport takes the server's defaults; ours announce that the
        # resource list changes (handshake era: notifications/resources/list_changed).
        return super().create_initialization_options(
            notification_options or NotificationOptions(resources_changed=True), experimental_capabilities, extensions
        )


server = DecisionLogServer(
    "mcpsite-decisions",
    version="1.0.0",
    instructions="An architecture decision log. Records are resources adr://{number}; tools search and change them.",
    lifespan=lifespan,
    get_tool_input_schema=tools.input_schema,
    on_list_tools=tools.list_tools,
    on_call_tool=tools.call_tool,
    on_list_resources=resources.list_resources,
    on_list_resource_templates=resources.list_resource_templates,
    on_read_resource=resources.read_resource,
    on_subscribe_resource=resources.subscribe,
    on_unsubscribe_resource=resources.unsubscribe,
    on_subscriptions_listen=ListenHandler(bus),
    on_list_prompts=prompts.list_prompts,
    on_get_prompt=prompts.get_prompt,
    on_completion=prompts.complete,
)
