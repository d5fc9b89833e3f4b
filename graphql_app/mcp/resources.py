"""Decision records as MCP resources: `adr://{number}`, markdown."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    EmptyResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    SubscribeRequestParams,
    TextResourceContents,
    UnsubscribeRequestParams,
)

from graphql_app import decisions
from graphql_app.models import Decision

from .notifications import handshake_listeners

SCHEME = "adr://"
TEMPLATE = "adr://{number}"
MARKDOWN = "text/markdown"
PAGE_SIZE = 100
# The MCP error code for a resource that does not exist.
RESOURCE_NOT_FOUND = -32002


def uri_of(number: int) -> str:
    return f"{SCHEME}{number}"


def number_of(uri: str) -> int | None:
    digits = uri.removeprefix(SCHEME) if uri.startswith(SCHEME) else ""
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 10 else None


def _page_after(after: int) -> list[Decision]:
    return list(Decision.objects.filter(number__gt=after).order_by("number")[: PAGE_SIZE + 1])


async def list_resources(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListResourcesResult:
    handshake_listeners.watch_list(ctx)
    cursor = params.cursor if params is not None else None
    after = int(cursor) if cursor is not None and cursor.isdigit() else 0
    page = await database_sync_to_async(_page_after)(after)
    shown = page[:PAGE_SIZE]
    return ListResourcesResult(
        resources=[
            Resource(
                uri=uri_of(record.number),
                name=f"ADR {record.number}: {record.title}",
                description=f"{record.get_status_display()} · {record.category} · {record.date.isoformat()}",
                mime_type=MARKDOWN,
            )
            for record in shown
        ],
        next_cursor=str(shown[-1].number) if len(page) > PAGE_SIZE else None,
    )


async def list_resource_templates(
    ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
) -> ListResourceTemplatesResult:
    return ListResourceTemplatesResult(
        resource_templates=[
            ResourceTemplate(
                uri_template=TEMPLATE,
                name="decision",
                description="An architecture decision record, by number",
                mime_type=MARKDOWN,
            )
        ]
    )


def _markdown(number: int) -> str | None:
    try:
        return decisions.to_markdown(decisions.get(number))
    except Decision.DoesNotExist:
        return None


async def read_resource(ctx: ServerRequestContext[Any], params: ReadResourceRequestParams) -> ReadResourceResult:
    uri = str(params.uri)
    number = number_of(uri)
    text = await database_sync_to_async(_markdown)(number) if number is not None else None
    if text is None:
        raise MCPError(code=RESOURCE_NOT_FOUND, message=f"Resource not found: {uri}", data={"uri": uri})
    return ReadResourceResult(contents=[TextResourceContents(uri=uri, mime_type=MARKDOWN, text=text)])


async def subscribe(ctx: ServerRequestContext[Any], params: SubscribeRequestParams) -> EmptyResult:
    handshake_listeners.subscribe(ctx, str(params.uri))
    return EmptyResult()


async def unsubscribe(ctx: ServerRequestContext[Any], params: UnsubscribeRequestParams) -> EmptyResult:
    handshake_listeners.unsubscribe(ctx, str(params.uri))
    return EmptyResult()
