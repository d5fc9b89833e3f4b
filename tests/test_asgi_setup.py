"""What importing the ASGI entry point leaves behind in the process."""

from __future__ import annotations

import subprocess
import sys

from tests.nodes import REPO


def test_startup_objects_are_frozen_out_of_the_collectors_reach() -> None:
    # In a fresh interpreter: the test process itself may have imported the module already.
    probe = "import gc, mcpsite.asgi; print(gc.get_freeze_count())"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={"DJANGO_DEBUG": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Django, the apps and the SDK: far more than a bare interpreter's few thousand.
    assert int(result.stdout.strip()) > 50_000
