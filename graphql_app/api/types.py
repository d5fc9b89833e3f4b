"""GraphQL object types, built from the models: plain strawberry types, no ORM magic."""

from __future__ import annotations

import datetime

import strawberry
from asgiref.sync import sync_to_async

from graphql_app import decisions
from graphql_app.decisions import CATEGORIES, DecisionErrorCode
from graphql_app.models import Decision

from .limits import charge_rows

# The domain's own enums become GraphQL enums with the same members (strawberry
# marks the classes); fields below are annotated with the domain classes.
strawberry.enum(Decision.Status, name="DecisionStatus", description="Where a record is in its life.")
strawberry.enum(
    DecisionErrorCode, name="DecisionErrorCode", description="Why a mutation refused; stable, for programs to act on."
)


# Field resolvers of DecisionType, defined first so that its body can name them.
# None touches the database but `_superseded_by`, which runs in a worker thread.


def _markdown(root: DecisionType) -> str:
    return decisions.to_markdown(root.record)


def _superseded_by_number(root: DecisionType) -> int | None:
    # The foreign key holds the successor's number (to_field="number").
    return root.record.superseded_by_id


async def _superseded_by(root: DecisionType) -> DecisionType | None:
    if root.record.superseded_by_id is None:
        return None
    charge_rows(1)
    return DecisionType.from_model(await sync_to_async(decisions.get)(root.record.superseded_by_id))


@strawberry.type(name="Decision", description="An architecture decision record (ADR).")
class DecisionType:
    number: int = strawberry.field(description="The record's number, assigned on proposal; never reused.")
    title: str
    status: Decision.Status
    date: datetime.date = strawberry.field(description="The day the record was proposed.")
    category: str = strawberry.field(description=f"One of: {', '.join(CATEGORIES)}.")
    context: str
    decision: str
    consequences: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    record: strawberry.Private[Decision]

    @classmethod
    def from_model(cls, record: Decision) -> DecisionType:
        return cls(
            number=record.number,
            title=record.title,
            status=Decision.Status(record.status),
            date=record.date,
            category=record.category,
            context=record.context,
            decision=record.decision,
            consequences=record.consequences,
            created_at=record.created_at,
            updated_at=record.updated_at,
            record=record,
        )

    markdown: str = strawberry.field(resolver=_markdown, description="The record in markdown, as kept under docs/adr/.")
    superseded_by_number: int | None = strawberry.field(
        resolver=_superseded_by_number, description="The number of the record that replaced this one, if superseded."
    )
    superseded_by: DecisionType | None = strawberry.field(
        resolver=_superseded_by, description="The record that replaced this one, if superseded."
    )


@strawberry.type(description="How many records one category holds.")
class CategoryCount:
    category: str
    count: int


@strawberry.type(description="Where a page of a connection sits in the whole list (Relay).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class DecisionEdge:
    cursor: str = strawberry.field(description="Opaque; pass it as `after` to continue after this record.")
    node: DecisionType


@strawberry.type(description="One page of records, in number order.")
class DecisionConnection:
    edges: list[DecisionEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Records matching the filters, on all pages.")
