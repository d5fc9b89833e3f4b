"""The one place a domain `ValidationError` becomes a GraphQL error.

Mutations answer refusals in their payload: `errors: [DecisionError!]!`, one
per bad field, each with the field, a `DecisionErrorCode` and a message.
Queries have no payload, so a refusal (an unknown category filter, a bad
cursor) is a GraphQL error whose extensions say `"code": "BAD_USER_INPUT"`
(the label GraphQL clients and tools know), the field and the specific reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import strawberry
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from graphql import GraphQLError

from graphql_app.decisions import DecisionErrorCode

from . import types  # noqa: F401  # registers DecisionErrorCode as a GraphQL enum

logger = logging.getLogger(__name__)

BAD_USER_INPUT = "BAD_USER_INPUT"


@strawberry.type(description="Why a mutation refused, for one field.")
class DecisionError:
    field: str | None = strawberry.field(
        description="The argument or input field at fault; null for the whole request."
    )
    code: DecisionErrorCode
    message: str


def _flatten(exc: ValidationError) -> list[tuple[str | None, ValidationError]]:
    """(field, single error) pairs; field None for errors that concern no one field."""
    if hasattr(exc, "error_dict"):
        return [
            (None if field == NON_FIELD_ERRORS else field, error)
            for field, errors in exc.error_dict.items()
            for error in errors
        ]
    return [(None, error) for error in exc.error_list]


def _message(error: ValidationError) -> str:
    return " ".join(error.messages)


def decision_errors(exc: ValidationError) -> list[DecisionError]:
    """The payload errors for a refused mutation."""
    result = []
    for field, error in _flatten(exc):
        try:
            code = DecisionErrorCode(str(error.code))
        except ValueError:
            # Only the domain's codes should get here; say so, but still answer the client.
            logger.warning("Validation error without a DecisionErrorCode: %r", error)
            code = DecisionErrorCode.INVALID
        result.append(DecisionError(field=field, code=code, message=_message(error)))
    return result


def query_error(exc: ValidationError, arguments: Mapping[str, str] | None = None) -> GraphQLError:
    """One GraphQL error for a refused query argument (the first, if several).
    `arguments` renames domain fields to the query's argument names."""
    pairs = _flatten(exc)
    field, error = pairs[0] if pairs else (None, exc)
    if field is not None and arguments:
        field = arguments.get(field, field)
    reason = str(error.code or DecisionErrorCode.INVALID).upper()
    return GraphQLError(_message(error), extensions={"code": BAD_USER_INPUT, "field": field, "reason": reason})
