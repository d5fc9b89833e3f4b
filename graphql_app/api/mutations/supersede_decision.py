from __future__ import annotations

from typing import Annotated

import strawberry

from graphql_app import decisions

from .base import DecisionPayload, perform


@strawberry.type
class SupersedeDecisionPayload(DecisionPayload):
    pass


async def supersede_decision(
    number: Annotated[int, strawberry.argument(description="The accepted record being replaced.")],
    by: Annotated[int, strawberry.argument(description="The proposed or accepted record replacing it.")],
) -> SupersedeDecisionPayload:
    return await perform(SupersedeDecisionPayload, lambda: decisions.supersede(number, by=by))
