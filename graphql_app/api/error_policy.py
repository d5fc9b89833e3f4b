"""Which errors are the client's and which are ours.

Client errors (a query that does not parse or validate, bad variables, or a
refusal we raise on purpose) are answered as they are and logged at DEBUG
only: they are not our failures. Anything else escaping a resolver is a bug:
it is logged with its traceback, and the client sees only "Internal server
error." with `"code": "INTERNAL_SERVER_ERROR"`, never our internals.
"""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from .visibility import hide_suggestions

logger = logging.getLogger(__name__)

INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


def is_client_error(error: GraphQLError) -> bool:
    # No path: the request failed before execution (parse, validation,
    # variable coercion). With a path it came from a resolver: ours only when a
    # resolver raised a GraphQLError itself (graphql-core keeps it as original_error).
    if error.path is None:
        return True
    return error.original_error is None or isinstance(error.original_error, GraphQLError)


class MaskServerErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(
            should_mask_error=lambda error: not is_client_error(error), error_message="Internal server error."
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked


class Schema(strawberry.Schema):
    """strawberry's schema, logging server errors only (strawberry logs every error at ERROR).
    Every error a client sees passes here first: hints that reveal the schema are dropped here too."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        hide_suggestions(errors)
        for error in errors:
            if is_client_error(error):
                logger.debug("GraphQL client error: %s", error.message)
            else:
                logger.error("GraphQL resolver failed: %s", error.message, exc_info=error.original_error)
