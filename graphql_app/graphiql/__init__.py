"""GraphiQL at /graphql from the node itself: pinned npm packages (assets.py), served as static files (finder.py)."""
