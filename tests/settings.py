"""Settings for the test run: the project's own, with a throwaway secret key."""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
# Most tests are about other things than tokens; those about tokens turn it on
# (nodes started from here inherit the environment).
os.environ.setdefault("MCP_AUTH", "off")

from mcpsite.settings import *  # noqa: F403
