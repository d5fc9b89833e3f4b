"""The `draft_decision` prompt, and completion for record numbers and categories."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    GetPromptRequestParams,
    GetPromptResult,
    ListPromptsResult,
    PaginatedRequestParams,
    Prompt,
    PromptArgument,
    PromptMessage,
    PromptReference,
    ResourceTemplateReference,
    TextContent,
)

from graphql_app.models import CATEGORIES, Decision

from .resources import TEMPLATE

DRAFT = "draft_decision"
MAX_COMPLETIONS = 100

DRAFT_PROMPT = Prompt(
    name=DRAFT,
    title="Draft a decision record",
    description="Turn a short description into a new architecture decision record, ready to propose.",
    arguments=[
        PromptArgument(name="description", description="What was decided, in a sentence or two", required=True),
        PromptArgument(name="category", description=f"One of: {', '.join(CATEGORIES)}", required=False),
    ],
)


async def list_prompts(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListPromptsResult:
    return ListPromptsResult(prompts=[DRAFT_PROMPT])


async def get_prompt(ctx: ServerRequestContext[Any], params: GetPromptRequestParams) -> GetPromptResult:
    if params.name != DRAFT:
        raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt {params.name!r}; the prompt is {DRAFT!r}")
    arguments = params.arguments or {}
    description = arguments.get("description", "").strip()
    if not description:
        raise MCPError(code=INVALID_PARAMS, message="The 'description' argument is required")
    category = arguments.get("category", "").strip()
    if category and category not in CATEGORIES:
        raise MCPError(code=INVALID_PARAMS, message=f"Unknown category {category!r}; use one of {list(CATEGORIES)}")
    titles = await database_sync_to_async(_recent_titles)()
    category_line = category or "choose one of " + ", ".join(CATEGORIES)
    text = "\n".join(
        [
            "Draft an architecture decision record for this decision:",
            "",
            description,
            "",
            f"Category: {category_line}.",
            "Write a short imperative title, then three sections in markdown:",
            "## Context (the forces at play), ## Decision (what we do), ## Consequences (what follows, good and bad).",
            "Keep it under 300 words. When it reads well, call the propose_decision tool with it.",
            "",
            "Recent records, for tone and to avoid duplicates:",
            *(f"- {title}" for title in titles),
        ]
    )
    return GetPromptResult(
        description=f"Draft a decision record: {description[:80]}",
        messages=[PromptMessage(role="user", content=TextContent(type="text", text=text))],
    )


def _recent_titles() -> list[str]:
    return [f"ADR {n}: {title}" for n, title in Decision.objects.order_by("-number").values_list("number", "title")[:5]]


async def complete(ctx: ServerRequestContext[Any], params: CompleteRequestParams) -> CompleteResult:
    ref, argument = params.ref, params.argument
    typed = argument.value.strip()
    values: list[str] = []
    if isinstance(ref, PromptReference) and ref.name == DRAFT and argument.name == "category":
        values = [category for category in CATEGORIES if category.lower().startswith(typed.lower())]
    elif isinstance(ref, ResourceTemplateReference) and ref.uri == TEMPLATE and argument.name == "number":
        values = await database_sync_to_async(_numbers_starting_with)(typed)
    shown = values[:MAX_COMPLETIONS]
    return CompleteResult(completion=Completion(values=shown, total=len(values), has_more=len(values) > len(shown)))


def _numbers_starting_with(typed: str) -> list[str]:
    if typed and not typed.isdigit():
        return []
    numbers = Decision.objects.order_by("number").values_list("number", flat=True)
    return [str(number) for number in numbers if str(number).startswith(typed)]
