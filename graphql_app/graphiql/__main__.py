"""`python -m graphql_app.graphiql`: install GraphiQL's pinned packages unless they are already (see assets.py)."""

from graphql_app.graphiql.assets import install

install()
