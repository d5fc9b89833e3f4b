from __future__ import annotations

import strawberry

from graphql_app import decisions

from .base import DecisionPayload, perform


@strawberry.input(description="The fields to change; omitted or null fields stay as they are.")
class EditDecisionInput:
    title: str | None = None
    category: str | None = None
    context: str | None = None
    decision: str | None = None
    consequences: str | None = None


@strawberry.type
class EditDecisionPayload(DecisionPayload):
    pass


async def edit_decision(number: int, input: EditDecisionInput) -> EditDecisionPayload:
    return await perform(
        EditDecisionPayload,
        lambda: decisions.edit(
            number,
            title=input.title,
            category=input.category,
            context=input.context,
            decision=input.decision,
            consequences=input.consequences,
        ),
    )
