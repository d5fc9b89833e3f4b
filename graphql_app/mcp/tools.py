"""Tools on the decision log: search, read, propose, change status.

Each tool's arguments are a pydantic model, which gives both the advertised
input schema and the validation; bad arguments and refused changes come back
as `isError` results that say what to fix, never as protocol errors.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError as DomainError
from mcp.server import ServerRequestContext
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as ArgumentError

from graphql_app import decisions
from graphql_app.models import CATEGORIES, Decision

logger = logging.getLogger(__name__)

SEARCH_LIMIT = 50


class Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchArguments(Arguments):
    text: str | None = Field(None, description="Words to look for in titles and sections", max_length=200)
    category: str | None = Field(None, description=f"One of: {', '.join(CATEGORIES)}")
    status: Literal["proposed", "accepted", "deprecated", "superseded"] | None = None
    limit: int = Field(20, ge=1, le=SEARCH_LIMIT)


class ReadArguments(Arguments):
    number: int = Field(description="The record's number", ge=1)


class ProposeArguments(Arguments):
    title: str = Field(min_length=1, max_length=200)
    category: str = Field(description=f"One of: {', '.join(CATEGORIES)}")
    context: str = Field(min_length=1, description="The forces at play")
    decision: str = Field(min_length=1, description="What was decided")
    consequences: str = Field(min_length=1, description="What follows, good and bad")


class StatusArguments(Arguments):
    number: int = Field(ge=1)
    status: Literal["accepted", "deprecated", "superseded"]
    superseded_by: int | None = Field(None, ge=1, description="Required when status is superseded")


def _line(record: Decision) -> str:
    return f"ADR {record.number} [{record.status}] {record.title} ({record.category}, {record.date.isoformat()})"


def _search(args: SearchArguments) -> str:
    found = list(decisions.search(text=args.text, category=args.category, status=args.status)[: args.limit])
    return "\n".join(_line(record) for record in found) or "No decision records match."


def _read(args: ReadArguments) -> str:
    return decisions.to_markdown(decisions.get(args.number))


def _propose(args: ProposeArguments) -> str:
    record = decisions.propose(**args.model_dump())
    return f"Proposed {_line(record)}; read it at adr://{record.number}"


def _change_status(args: StatusArguments) -> str:
    if args.status == "accepted":
        record = decisions.accept(args.number)
    elif args.status == "deprecated":
        record = decisions.deprecate(args.number)
    elif args.superseded_by is None:
        raise DomainError("superseded_by is required to supersede a record", code="required")
    else:
        record = decisions.supersede(args.number, by=args.superseded_by)
    return f"Now {_line(record)}"


class ToolSpec(NamedTuple):
    description: str
    arguments: type[Arguments]
    run: Callable[[Any], str]
    # The scope a caller needs (sessions_app/auth/scopes.py): "read" or "write".
    access: Literal["read", "write"]


TOOLS: dict[str, ToolSpec] = {
    "search_decisions": ToolSpec(
        "Find decision records by text, category and status.", SearchArguments, _search, "read"
    ),
    "read_decision": ToolSpec("Read one decision record as markdown.", ReadArguments, _read, "read"),
    "propose_decision": ToolSpec(
        "Propose a new decision record; it gets the next number.", ProposeArguments, _propose, "write"
    ),
    "change_decision_status": ToolSpec(
        "Accept, deprecate, or supersede (by another record) a decision record.",
        StatusArguments,
        _change_status,
        "write",
    ),
}
# What the transport checks before a call reaches us (MCP_SERVER's module exports it).
TOOL_ACCESS = {name: spec.access for name, spec in TOOLS.items()}


async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
    return ListToolsResult(
        tools=[
            Tool(
                name=name,
                description=spec.description,
                input_schema=_schema(name),
                annotations=ToolAnnotations(read_only_hint=spec.access == "read"),
            )
            for name, spec in TOOLS.items()
        ]
    )


def input_schema(name: str) -> dict[str, Any] | None:
    """For the transport's Mcp-Param header check, without listing the tools per call."""
    return _schema(name) if name in TOOLS else None


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    """A tool's input schema, made once: the models never change, and pydantic builds it anew on each ask."""
    return TOOLS[name].arguments.model_json_schema()


async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
    tool = TOOLS.get(params.name)
    if tool is None:
        return _error(f"Unknown tool {params.name!r}; the tools are: {', '.join(TOOLS)}")
    model, run = tool.arguments, tool.run
    try:
        arguments = model.model_validate(params.arguments or {})
    except ArgumentError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
        return _error(f"Invalid arguments for {params.name}: {problems}")
    try:
        text = await _in_thread(run, arguments)
    except Decision.DoesNotExist:
        return _error(f"There is no decision record number {getattr(arguments, 'number', '?')}")
    except DomainError as exc:
        return _error("; ".join(exc.messages))
    except Exception:
        # Say nothing of the internals to the client; the log has the details.
        logger.exception("Tool %s failed", params.name)
        return _error(f"{params.name} failed on the server; the error was logged")
    return CallToolResult(content=[TextContent(type="text", text=text)])


async def _in_thread(run: Callable[[Any], str], arguments: Arguments) -> str:
    # The ORM is synchronous. Channels' wrapper also drops database connections
    # that died or outlived CONN_MAX_AGE, which no request signal does for a
    # consumer: without it a restarted PostgreSQL would fail every later call.
    text: str = await database_sync_to_async(run)(arguments)
    return text


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
