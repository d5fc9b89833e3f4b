"""Settings for the browser test's node: the test settings, with a URLconf that serves static files."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.browser.urls"
