"""Settings for the test run: the project's own, with a throwaway secret key."""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))

from mcpsite.settings import *  # noqa: F403
