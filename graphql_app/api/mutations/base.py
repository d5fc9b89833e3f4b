"""What every decision mutation shares: its payload shape, and running the domain call."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import strawberry
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError

from graphql_app.models import Decision

from ..errors import DecisionError, decision_errors
from ..types import DecisionType


@strawberry.type
class DecisionPayload:
    decision: DecisionType | None = strawberry.field(description="The record as it is now; null if refused.")
    errors: list[DecisionError] = strawberry.field(description="Empty on success.")


P = TypeVar("P", bound=DecisionPayload)


async def perform(payload: type[P], operation: Callable[[], Decision]) -> P:
    """Run a domain write in a worker thread (the ORM is sync); a refusal becomes the payload's errors."""
    try:
        record = await sync_to_async(operation)()
    except ValidationError as exc:
        return payload(decision=None, errors=decision_errors(exc))
    return payload(decision=DecisionType.from_model(record), errors=[])
