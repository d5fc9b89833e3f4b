"""The decision log's GraphQL API at /graphql (strawberry), kept apart from the domain.

- schema.py: the root schema, merging each domain's queries and mutations;
- types.py: the object types built from models;
- queries.py, resolvers.py: the query fields and their one-line hand-offs to
  graphql_app.decisions;
- mutations/<verb_noun>.py: one mutation each, returning a payload with typed errors;
- errors.py: the one place a domain ValidationError becomes a GraphQL error;
- error_policy.py: which errors are the client's (reported) and which are ours
  (masked and logged);
- pagination.py: cursors and pages; views.py: the HTTP view.

Stateless: every request is answered from the database alone, so any node
answers any request.
"""
