from __future__ import annotations

import datetime

import strawberry

from graphql_app import decisions

from .base import DecisionPayload, perform


@strawberry.input(description="A new record; every text field is required, the category one of the known ones.")
class ProposeDecisionInput:
    title: str
    category: str
    context: str
    decision: str
    consequences: str
    date: datetime.date | None = strawberry.field(default=None, description="Default: today.")


@strawberry.type
class ProposeDecisionPayload(DecisionPayload):
    pass


async def propose_decision(input: ProposeDecisionInput) -> ProposeDecisionPayload:
    return await perform(
        ProposeDecisionPayload,
        lambda: decisions.propose(
            title=input.title,
            category=input.category,
            context=input.context,
            decision=input.decision,
            consequences=input.consequences,
            date=input.date,
        ),
    )
