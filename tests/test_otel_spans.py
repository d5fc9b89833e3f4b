"""The SDK's OpenTelemetry middleware comes off the hosted server unless MCP_OTEL_SPANS asks for it."""

from __future__ import annotations

from typing import Any

from mcp.server import Server
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext

from sessions_app.session.hosted_server import without_spans


class Counting(ServerMiddleware[Any]):
    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        return await call_next(ctx)


def test_only_the_span_middleware_comes_off() -> None:
    server: Server[Any] = Server("spans")
    assert any(isinstance(each, OpenTelemetryMiddleware) for each in server.middleware)
    ours = Counting()
    server.middleware.append(ours)
    without_spans(server)
    assert server.middleware == [ours]
