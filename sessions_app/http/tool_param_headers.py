"""`Mcp-Param-*` headers on 2026-07-28 `tools/call` requests (SEP-2243).

A tool's input schema may mark arguments with `x-mcp-header`; clients then
mirror those arguments into `Mcp-Param-<name>` headers so intermediaries can
route on them. The server must refuse a request whose headers and body
disagree. Checking needs the tool's schema: from the server's
`get_tool_input_schema` when it has one (cheap), else from its own
`tools/list` answer for this caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from mcp.server.connection import Connection
from mcp.server.runner import serve_one
from mcp.shared.dispatcher import DispatchContext
from mcp.shared.inbound import (
    InboundLadderRejection,
    InboundModernRoute,
    validate_mcp_param_headers,
)
from mcp.shared.transport_context import TransportContext
from mcp.types import JSONRPCRequest

from sessions_app.session.hosted_server import HostedServer

logger = logging.getLogger(__name__)

PARAM_HEADER_PREFIX = "mcp-param-"
# A listing that never ends is a server bug; stop paging rather than hang.
MAX_LIST_PAGES = 100


async def param_header_rejection(
    host: HostedServer,
    message: JSONRPCRequest,
    headers: Mapping[str, str],
    route: InboundModernRoute,
    context: DispatchContext[TransportContext],
) -> InboundLadderRejection | None:
    if message.method != "tools/call":
        return None
    params = message.params or {}
    name, arguments = params.get("name"), params.get("arguments") or {}
    if not isinstance(name, str) or not isinstance(arguments, Mapping):
        return None  # the dispatcher refuses malformed params itself
    if not arguments and not any(header.startswith(PARAM_HEADER_PREFIX) for header in headers):
        return None
    schema = await _input_schema(host, name, route, context)
    if schema is None or not _marks_headers(schema):
        return None
    return validate_mcp_param_headers(schema, arguments, headers)


# Whether each input schema seen marks any argument with `x-mcp-header`, by the
# schema object (kept, so its id is not reused). Servers hand out the same
# schema objects call after call; walking one costs 30 us, and most mark none.
_marks: dict[int, tuple[Any, bool]] = {}
MAX_SCHEMAS_REMEMBERED = 256


def _marks_headers(schema: Any) -> bool:
    known = _marks.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    marks = "x-mcp-header" in json.dumps(schema, default=str)
    if len(_marks) >= MAX_SCHEMAS_REMEMBERED:
        _marks.clear()
    _marks[id(schema)] = (schema, marks)
    return marks


async def _input_schema(
    host: HostedServer, name: str, route: InboundModernRoute, context: DispatchContext[TransportContext]
) -> Any | None:
    lookup = host.server.get_tool_input_schema
    if lookup is not None:
        return lookup(name)
    if host.server.get_request_handler("tools/list") is None:
        return None
    list_params: dict[str, Any] = {"_meta": (route_meta := _meta_of(route))}
    for _ in range(MAX_LIST_PAGES):
        # serve_one closes its connection, so each page gets a new one.
        connection = Connection.from_envelope(route.protocol_version, route.client_info, route.client_capabilities)
        try:
            listing = await serve_one(
                host.server,
                context,
                "tools/list",
                list_params,
                connection=connection,
                lifespan_state=host.lifespan_state,
            )
        except Exception:
            # Header validation must never break a call that would otherwise work.
            logger.exception("Mcp-Param header check skipped: tools/list failed")
            return None
        for tool in listing.get("tools", []):
            if tool.get("name") == name:
                return tool.get("inputSchema")
        cursor = listing.get("nextCursor")
        if not isinstance(cursor, str):
            return None
        list_params = {"_meta": route_meta, "cursor": cursor}
    logger.warning("Mcp-Param header check skipped: tools/list did not end within %d pages", MAX_LIST_PAGES)
    return None


def _meta_of(route: InboundModernRoute) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "io.modelcontextprotocol/protocolVersion": route.protocol_version,
        "io.modelcontextprotocol/clientCapabilities": route.client_capabilities,
    }
    if route.client_info is not None:
        meta["io.modelcontextprotocol/clientInfo"] = route.client_info
    return meta
