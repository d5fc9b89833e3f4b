"""The root GraphQL schema: every domain's queries and mutations, merged.

The decision log is the only domain so far; another adds its `...Queries` and
`...Mutations` types to the tuples below.
"""

from __future__ import annotations

from strawberry.tools import merge_types

from .access import RequireScopes
from .error_policy import MaskServerErrors, Schema
from .limits import OperationLimits
from .mutations import DecisionMutations
from .queries import DecisionQueries
from .visibility import SchemaVisibility

Query = merge_types("Query", (DecisionQueries,))
Mutation = merge_types("Mutation", (DecisionMutations,))

# Per operation, in this order: which rules validate the document, what it may
# cost, whether its caller may run it, and what the client sees of our errors.
schema = Schema(
    query=Query,
    mutation=Mutation,
    extensions=[SchemaVisibility, OperationLimits, RequireScopes, MaskServerErrors],
)
