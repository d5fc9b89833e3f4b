"""What one GraphQL operation may cost, and the clear refusal when it asks for more.

One small document can ask for a huge answer: sixty aliases of a 100-row page
are a 5 KB request and a 200 MB response, built in the node's memory while its
other requests (MCP included) wait. So an operation is bounded twice.

From the document alone, before anything runs (strawberry's own limiters):
- tokens (GRAPHQL_MAX_TOKENS): the parser stops past the limit, so refusing a
  megabyte of aliases costs no more than parsing a legal document;
- aliases (GRAPHQL_MAX_ALIASES) and depth (GRAPHQL_MAX_DEPTH), checked once
  the document is otherwise valid.

While it runs:
- rows (GRAPHQL_MAX_ROWS): a resolver charges the records it is about to load
  to the operation's budget before it queries (a page is charged its `first`);
  a field past the budget is refused without touching the database (a
  non-null field's refusal nulls `data`, as GraphQL does for any error);
- bytes (GRAPHQL_MAX_RESPONSE_BYTES): an encoded answer larger than this is
  replaced by one error (views.py), the last guard against large records.

Every refusal is a GraphQL error with `extensions: {"code": "LIMIT_EXCEEDED",
"reason": ..., "limit": ...}`. Settings are read per operation: strawberry
builds a new extension for each one, so a test may change them.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

from django.conf import settings
from graphql import GraphQLError, GraphQLSyntaxError, validate
from graphql.validation import ASTValidationRule
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.schema import validate_document

LIMIT_EXCEEDED = "LIMIT_EXCEEDED"


def limit_error(message: str, reason: str, limit: int) -> GraphQLError:
    return GraphQLError(message, extensions={"code": LIMIT_EXCEEDED, "reason": reason, "limit": limit})


def _label(error: GraphQLError, reason: str, limit: int) -> GraphQLError:
    error.extensions = {**(error.extensions or {}), "code": LIMIT_EXCEEDED, "reason": reason, "limit": limit}
    return error


@dataclass
class RowBudget:
    """The records one operation may still load."""

    limit: int
    used: int = 0

    def charge(self, rows: int) -> None:
        if self.used + rows > self.limit:
            raise limit_error(
                f"This operation would load more than {self.limit} records; ask for fewer (smaller `first`, "
                "fewer aliases) or page through them in several requests.",
                "TOO_MANY_ROWS",
                self.limit,
            )
        self.used += rows


# The running operation's budget: set by OperationLimits around execution, read
# by resolvers (asyncio tasks and asgiref's worker threads inherit it). None
# outside an operation of a schema with OperationLimits: nothing to charge.
_budget: contextvars.ContextVar[RowBudget | None] = contextvars.ContextVar("graphql_row_budget", default=None)


def charge_rows(rows: int) -> None:
    """Charge `rows` records to the running operation, or refuse the field (LIMIT_EXCEEDED) if over budget."""
    budget = _budget.get()
    if budget is not None:
        budget.charge(rows)


class ValidDocuments:
    """The documents already found valid, the most recently used `size` of them.

    Validating costs milliseconds even for a one-field query (graphql-core walks
    the document with some thirty rules, then the limits walk it again), and
    clients send the same few documents over and over. Only a document's digest
    and what it was validated against are kept, so memory stays small whatever
    the documents' size. A document with errors is not kept: it is validated
    again each time, so its errors are always this request's.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    @staticmethod
    def key(query: str, *against: Hashable) -> Hashable:
        return (hashlib.blake2b(query.encode(), digest_size=16).digest(), *against)

    def __contains__(self, key: Hashable) -> bool:
        if key not in self._keys:
            return False
        self._keys.move_to_end(key)
        return True

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)


valid_documents = ValidDocuments(size=512)


class OperationLimits(MaxTokensLimiter):
    """Token, alias and depth limits before execution, and the row budget during it."""

    def __init__(self) -> None:
        super().__init__(max_token_count=settings.GRAPHQL_MAX_TOKENS)
        max_aliases, max_depth = settings.GRAPHQL_MAX_ALIASES, settings.GRAPHQL_MAX_DEPTH
        self.document_limits: tuple[tuple[str, int, list[type[ASTValidationRule]]], ...] = (
            ("TOO_MANY_ALIASES", max_aliases, list(MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules)),
            ("TOO_DEEP", max_depth, list(QueryDepthLimiter(max_depth=max_depth).validation_rules)),
        )
        self.limit_values = (max_aliases, max_depth)

    def on_parse(self) -> Iterator[None]:
        yield
        # The parser's own refusal (MaxTokensLimiter sets its max_tokens): a syntax error, labelled here.
        for error in self.execution_context.pre_execution_errors or ():
            if isinstance(error, GraphQLSyntaxError) and f"more than {self.max_token_count} tokens" in error.message:
                _label(error, "TOO_MANY_TOKENS", self.max_token_count)

    def on_validate(self) -> Iterator[None]:
        # The usual validation first (strawberry's rules and any an extension
        # added), then the limits, only on a valid document: the depth limiter
        # assumes every fragment it meets exists. The tokens limit keeps both
        # cheap. Errors set here (even none) stand in for strawberry's own pass.
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            schema = context.schema._schema
            rules = tuple(context.validation_rules)
            key = valid_documents.key(context.query or "", schema, rules, self.limit_values)
            if key in valid_documents:
                context.pre_execution_errors = []
                yield
                return
            errors = validate_document(schema, context.graphql_document, rules)
            for reason, limit, limit_rules in self.document_limits:
                if errors:
                    break
                errors = [
                    _label(error, reason, limit) for error in validate(schema, context.graphql_document, limit_rules)
                ]
            if not errors:
                valid_documents.add(key)
            context.pre_execution_errors = errors
        yield

    def on_execute(self) -> Iterator[None]:
        token = _budget.set(RowBudget(settings.GRAPHQL_MAX_ROWS))
        yield
        _budget.reset(token)


def too_large(size: int) -> dict[str, object]:
    """The answer sent instead of an encoded response of `size` bytes over GRAPHQL_MAX_RESPONSE_BYTES."""
    limit = settings.GRAPHQL_MAX_RESPONSE_BYTES
    error = limit_error(
        f"The response would be {size} bytes, over the limit of {limit}; ask for fewer records or fields.",
        "RESPONSE_TOO_LARGE",
        limit,
    )
    return {"data": None, "errors": [error.formatted]}
