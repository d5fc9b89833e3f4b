"""Query resolvers: each hands its arguments to graphql_app.decisions, in a worker
thread because the ORM is synchronous, and turns a refusal into a GraphQL error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import strawberry
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError

from graphql_app import decisions
from graphql_app.models import Decision

from .errors import query_error
from .limits import charge_rows
from .pagination import DEFAULT_FIRST, MAX_FIRST, paginate
from .types import CategoryCount, DecisionConnection, DecisionType

T = TypeVar("T")


# decisions.search calls the text filter `text`; the query's argument is `search`.
ARGUMENT_NAMES = {"text": "search"}


async def _in_thread(work: Callable[[], T]) -> T:
    try:
        return await sync_to_async(work)()
    except ValidationError as exc:
        raise query_error(exc, ARGUMENT_NAMES) from exc


def _one(number: int) -> DecisionType | None:
    try:
        return DecisionType.from_model(decisions.get(number))
    except Decision.DoesNotExist:
        return None


async def resolve_decisions(
    first: Annotated[int, strawberry.argument(description=f"Page size, 0 to {MAX_FIRST}.")] = DEFAULT_FIRST,
    after: Annotated[str | None, strawberry.argument(description="A cursor from a previous page.")] = None,
    category: Annotated[str | None, strawberry.argument(description="Only this category.")] = None,
    status: Annotated[Decision.Status | None, strawberry.argument(description="Only this status.")] = None,
    search: Annotated[
        str | None, strawberry.argument(description="Case-insensitive text in the title or any section.")
    ] = None,
) -> DecisionConnection:
    # Charged before the query: the page may hold `first` records (paginate refuses a `first` out of range).
    charge_rows(min(max(first, 0), MAX_FIRST))
    return await _in_thread(
        lambda: paginate(decisions.search(text=search, category=category, status=status), first=first, after=after)
    )


async def resolve_decision(number: int) -> DecisionType | None:
    charge_rows(1)
    return await _in_thread(lambda: _one(number))


async def resolve_category_counts() -> list[CategoryCount]:
    return await _in_thread(
        lambda: [CategoryCount(category=name, count=count) for name, count in decisions.category_counts().items()]
    )
