"""The reference: the official SDK's own Streamable HTTP server (Starlette), with our one `echo` tool.

Served by uvicorn: `uvicorn --factory bench.reference_app:create_app`. The SDK's
low-level `Server` gets the very handlers our node hosts
(sessions_app.echo_server), so both sides do the same work per call; only the
HTTP layer differs. BENCH_REFERENCE_JSON=1 selects the SDK's `json_response` mode,
otherwise requests are answered on SSE streams (its default).
"""

from __future__ import annotations

import os
from typing import Any

from mcp.server import Server
from starlette.applications import Starlette

from sessions_app.echo_server import call_tool, input_schema, list_tools


def create_app() -> Starlette:
    server: Server[Any] = Server(
        "reference",
        version="0.1.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=input_schema,
    )
    json_response = os.environ.get("BENCH_REFERENCE_JSON", "") == "1"
    return server.streamable_http_app(json_response=json_response, host="127.0.0.1")
