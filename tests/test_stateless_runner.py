"""A 2026-07-28 request runs on a connection of its own (sessions_app/http/stateless.py, `_serve_one`):
what a handler registers on it runs once the request is served, and a connection with nothing registered
is not unwound at all."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server import Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp.types import CallToolRequestParams, CallToolResult, TextContent

from sessions_app.http import stateless
from sessions_app.http.sse import SseConnection
from sessions_app.session.hosted_server import HostedServer
from sessions_app.session.session import RequestInfo
from tests.mcp_http import MODERN_VERSION, modern_meta

CALL = {"name": "echo", "arguments": {}, "_meta": modern_meta()}


def connection() -> Connection:
    return Connection.from_envelope(MODERN_VERSION, {"name": "unit", "version": "1"}, {})


def exchange_context() -> stateless.ExchangeContext:
    return stateless.ExchangeContext(
        transport=TransportContext(kind="streamable-http", can_send_request=False, headers={}),
        request_id=1,
        message_metadata=ServerMessageMetadata(request_context=RequestInfo({})),
        progress_token=None,
        outbox=SseConnection(16),
    )


def hosting(on_call: Any) -> HostedServer:
    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        on_call()
        return CallToolResult(content=[TextContent(type="text", text="done")])

    return HostedServer(Server("unit", version="1", on_call_tool=call_tool), lifespan_state={})


async def test_what_a_handler_registers_on_its_connection_runs_once_it_is_served() -> None:
    ran: list[str] = []
    own = connection()
    host = hosting(lambda: own.exit_stack.callback(ran.append, "cleaned up"))

    result = await stateless._serve_one(host, exchange_context(), "tools/call", CALL, own)

    assert result["content"][0]["text"] == "done"
    assert ran == ["cleaned up"]


async def test_a_connection_with_nothing_registered_is_not_unwound(monkeypatch: pytest.MonkeyPatch) -> None:
    unwound: list[Connection] = []

    async def record(connection: Connection) -> None:
        unwound.append(connection)

    monkeypatch.setattr(stateless, "aclose_shielded", record)

    await stateless._serve_one(hosting(lambda: None), exchange_context(), "tools/call", CALL, connection())

    assert unwound == []
