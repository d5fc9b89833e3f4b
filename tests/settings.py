"""Settings for the test run: the project's own, with a throwaway secret key and a test signing key."""

import os
import secrets
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
# Most tests are about other things than tokens; those about tokens turn it on
# (nodes started from here inherit the environment).
os.environ.setdefault("MCP_AUTH", "off")
# One RSA key for the whole run, in the git-ignored .oauth/; the nodes tests
# start inherit this environment, so their tokens verify here and vice versa.
if not (os.environ.get("OAUTH_SIGNING_KEY_FILE") or os.environ.get("OAUTH_SIGNING_KEY")):
    from oauth_app.keys import create_key_file

    _key_file = Path(__file__).resolve().parent.parent / ".oauth" / "test-signing-key.pem"
    create_key_file(_key_file)
    os.environ["OAUTH_SIGNING_KEY_FILE"] = str(_key_file)

from mcpsite.settings import *  # noqa: F403

# Test nodes serve static files straight from the apps and node_modules, as `make run` does: no
# collectstatic, no manifest. tests/test_static_files.py runs a node the production way.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
