"""An MCP server whose tools let tests observe the transport from outside.

Hosted by a test node (MCP_SERVER=tests.probe_server.server). Its state lives
in the node process, so tests read it back through other tool calls.

- `hold(key)`: sends one progress notification, then waits until `release(key)`
  (so a test can drop the stream in between) and answers "released <key>".
- `release(key)`: lets `hold(key)` finish.
- `park(key)`: waits forever; records in `cancelled` when it is cancelled.
- `cancelled(key)`: "yes" once `park(key)` was cancelled, else "no".
- `parked(key)`: "yes" once `park(key)` is waiting, else "no".
- `announce()`: sends `notifications/tools/list_changed`, which belongs on the
  standalone stream.
- `tick()`: sends one progress notification, lets the event loop run a few
  turns (as a handler awaiting I/O would), then answers.
- `roots()`: asks the client for its roots (a server-to-client request on the
  call's stream) and answers with their names, comma-separated.
- `flood(count, size)`: sends `count` log messages of `size` characters on the
  standalone stream, 2 ms apart, then answers "flooded".
- `log(text, traceback)`: writes `text` at WARNING on the node's Python logger
  `tests.probe_server` (its own log, not an MCP log message), with the
  traceback of a caught ValueError if `traceback` is true; answers "logged".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mcp.server import Server, ServerRequestContext
from mcp.shared.message import ServerMessageMetadata
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    ListRootsRequest,
    ListRootsResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

KEY_SCHEMA = {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}
NO_ARGUMENTS = {"type": "object", "properties": {}}
LOG_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}, "traceback": {"type": "boolean"}},
    "required": ["text"],
}
FLOOD_SCHEMA = {"type": "object", "properties": {"count": {"type": "integer"}, "size": {"type": "integer"}}}

logger = logging.getLogger(__name__)

_releases: dict[str, asyncio.Event] = {}
_cancelled: set[str] = set()
_parked: set[str] = set()


def _release_event(key: str) -> asyncio.Event:
    return _releases.setdefault(key, asyncio.Event())


def _text(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)])


async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
    return ListToolsResult(
        tools=[
            Tool(name="hold", description="Wait for release(key).", input_schema=KEY_SCHEMA),
            Tool(name="release", description="Let hold(key) finish.", input_schema=KEY_SCHEMA),
            Tool(name="park", description="Wait until cancelled.", input_schema=KEY_SCHEMA),
            Tool(name="cancelled", description="Whether park(key) was cancelled.", input_schema=KEY_SCHEMA),
            Tool(name="parked", description="Whether park(key) is waiting.", input_schema=KEY_SCHEMA),
            Tool(name="announce", description="Send tools/list_changed.", input_schema=NO_ARGUMENTS),
            Tool(name="tick", description="Report progress once, then answer.", input_schema=NO_ARGUMENTS),
            Tool(name="roots", description="Ask the client for its roots.", input_schema=NO_ARGUMENTS),
            Tool(name="flood", description="Send many large log messages.", input_schema=FLOOD_SCHEMA),
            Tool(name="log", description="Write text to the node's log.", input_schema=LOG_SCHEMA),
        ]
    )


async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
    key = str((params.arguments or {}).get("key", ""))
    if params.name == "hold":
        await ctx.session.report_progress(1, 2, "holding")
        await _release_event(key).wait()
        return _text(f"released {key}")
    if params.name == "release":
        _release_event(key).set()
        return _text(f"releasing {key}")
    if params.name == "park":
        _parked.add(key)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            _cancelled.add(key)
            raise
    if params.name == "parked":
        return _text("yes" if key in _parked else "no")
    if params.name == "cancelled":
        return _text("yes" if key in _cancelled else "no")
    if params.name == "tick":
        await ctx.session.report_progress(1, 1, "ticked")
        for _ in range(5):
            await asyncio.sleep(0)
        return _text("ticked")
    if params.name == "roots":
        related = ServerMessageMetadata(related_request_id=ctx.request_id)
        listing = await ctx.session.send_request(ListRootsRequest(), ListRootsResult, metadata=related)
        return _text(",".join(root.name or str(root.uri) for root in listing.roots))
    if params.name == "flood":
        arguments = params.arguments or {}
        text = "x" * int(arguments.get("size", 1024))
        for _ in range(int(arguments.get("count", 1))):
            await ctx.session.send_log_message(level="info", data=text, logger="flood")
            # As a real source would, between events: the stream's writer takes each one out.
            await asyncio.sleep(0.002)
        return _text("flooded")
    if params.name == "log":
        arguments = params.arguments or {}
        try:
            if arguments.get("traceback"):
                raise ValueError("raised to be logged")
            logger.warning("%s", arguments.get("text", ""))
        except ValueError:
            logger.exception("%s", arguments.get("text", ""))
        return _text("logged")
    if params.name == "announce":
        await ctx.session.send_tool_list_changed()
        return _text("announced")
    return CallToolResult(content=[TextContent(type="text", text=f"no tool {params.name}")], is_error=True)


server: Server[Any] = Server("probe", version="1", on_list_tools=list_tools, on_call_tool=call_tool)
