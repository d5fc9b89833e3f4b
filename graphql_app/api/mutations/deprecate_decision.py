from __future__ import annotations

import strawberry

from graphql_app import decisions

from .base import DecisionPayload, perform


@strawberry.type
class DeprecateDecisionPayload(DecisionPayload):
    pass


async def deprecate_decision(number: int) -> DeprecateDecisionPayload:
    return await perform(DeprecateDecisionPayload, lambda: decisions.deprecate(number))
