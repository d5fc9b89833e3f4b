from __future__ import annotations

import strawberry

from graphql_app import decisions

from .base import DecisionPayload, perform


@strawberry.type
class AcceptDecisionPayload(DecisionPayload):
    pass


async def accept_decision(number: int) -> AcceptDecisionPayload:
    return await perform(AcceptDecisionPayload, lambda: decisions.accept(number))
