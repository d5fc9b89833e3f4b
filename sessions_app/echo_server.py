"""A one-tool MCP server (`echo`) for transport tests, smoke checks and benchmarks.

The project's own server is the decision log (graphql_app.mcp.server); this
one needs no database, so the transport can be exercised on its own.
"""

from __future__ import annotations

from typing import Any

from mcp.server import Server, ServerRequestContext
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams, TextContent, Tool

# It keeps nothing per session: another node may adopt its sessions (session/adoption.py).
ADOPTABLE = True


ECHO_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "description": "Text to send back"}},
    "required": ["text"],
}


async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
    return ListToolsResult(
        tools=[Tool(name="echo", description="Answer with the text it is given.", input_schema=ECHO_SCHEMA)]
    )


async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
    arguments = params.arguments or {}
    if params.name != "echo":
        return CallToolResult(content=[TextContent(type="text", text=f"Unknown tool: {params.name}")], is_error=True)
    text = arguments.get("text")
    if not isinstance(text, str):
        return CallToolResult(content=[TextContent(type="text", text="'text' must be a string")], is_error=True)
    return CallToolResult(content=[TextContent(type="text", text=text)])


def input_schema(name: str) -> dict[str, Any] | None:
    """Lets the transport check Mcp-Param headers without listing the tools on every call."""
    return ECHO_SCHEMA if name == "echo" else None


server: Server[Any] = Server(
    "mcpsite",
    version="0.1.0",
    on_list_tools=list_tools,
    on_call_tool=call_tool,
    get_tool_input_schema=input_schema,
)
