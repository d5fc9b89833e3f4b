"""The decision log's query fields."""

from __future__ import annotations

import strawberry

from .resolvers import resolve_category_counts, resolve_decision, resolve_decisions
from .types import CategoryCount, DecisionConnection, DecisionType


@strawberry.type
class DecisionQueries:
    decisions: DecisionConnection = strawberry.field(
        resolver=resolve_decisions, description="Records in number order, filtered, one page at a time."
    )
    decision: DecisionType | None = strawberry.field(
        resolver=resolve_decision, description="The record with this number, or null."
    )
    category_counts: list[CategoryCount] = strawberry.field(
        resolver=resolve_category_counts, description="Records per category, every category listed."
    )
