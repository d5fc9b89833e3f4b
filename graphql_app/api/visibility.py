"""How much of the schema a client may learn: introspection and "Did you mean ...?" hints.

Both follow GRAPHQL_INTROSPECTION (default: DJANGO_DEBUG), read per operation.
Off, in production: `__schema` and `__type` are refused while validating
(graphql-core's NoSchemaIntrospectionCustomRule; `__typename` stays allowed),
and error messages lose the hints graphql-core appends, which name the fields,
arguments, types and enum values nearest to a client's guess and so would let
it map the schema anyway. The schema itself is committed
(graphql_app/schema.graphql) for the clients we write.
"""

from __future__ import annotations

from django.conf import settings
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules

# graphql-core ends a message with its hint: "... Did you mean 'edges'?".
_HINT = " Did you mean "


class SchemaVisibility(AddValidationRules):
    """Refuses introspection unless GRAPHQL_INTROSPECTION is on."""

    def __init__(self) -> None:
        super().__init__([] if settings.GRAPHQL_INTROSPECTION else [NoSchemaIntrospectionCustomRule])


def hide_suggestions(errors: list[GraphQLError]) -> None:
    """Drop graphql-core's hints from `errors` unless GRAPHQL_INTROSPECTION is on."""
    if settings.GRAPHQL_INTROSPECTION:
        return
    for error in errors:
        error.message = error.message.partition(_HINT)[0]
