"""GraphiQL's browser files: which files of which npm packages /graphql's page loads, and installing them.

The packages are pinned in package.json and package-lock.json beside this
file and installed with `npm ci` into node_modules/ here (git-ignored) by
`python -m graphql_app.graphiql`, which `make run` and `make test` run first
and which does nothing once the installation matches the lock file. Nothing
third-party is committed. finder.py hands exactly the files below to Django's
staticfiles under `graphiql/`, so collectstatic gives them hashed names and
the node serves them itself: the page never asks anything of another host.

Standard library only: it runs before Django is set up.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
LOCK_FILE = HERE / "package-lock.json"
# npm ci writes it last, a copy of what it installed: newer than the lock file once an install of it finished.
INSTALLED_LOCK = NODE_MODULES / ".package-lock.json"
STATIC_PREFIX = "graphiql"

# Paths under node_modules, which are also their static names under STATIC_PREFIX. React 18 is the
# last React with browser builds that need no bundler. The source maps are listed because the script
# and the stylesheet name them, and collectstatic refuses a reference to a file it cannot find.
FILES = (
    "react/umd/react.production.min.js",
    "react-dom/umd/react-dom.production.min.js",
    "graphiql/graphiql.min.js",
    "graphiql/graphiql.min.js.map",
    "graphiql/graphiql.min.css",
    "graphiql/graphiql.min.css.map",
)


def static_name(path: str) -> str:
    return f"{STATIC_PREFIX}/{path}"


def missing() -> list[str]:
    """The files of FILES that are not installed."""
    return [path for path in FILES if not (NODE_MODULES / path).is_file()]


def up_to_date() -> bool:
    """Whether node_modules holds what the lock file pins (npm ci finished after the lock file last changed)."""
    if not INSTALLED_LOCK.is_file() or missing():
        return False
    return INSTALLED_LOCK.stat().st_mtime >= LOCK_FILE.stat().st_mtime


def install() -> None:
    """`npm ci` here unless the installation is up to date; exits with a message if it cannot."""
    if up_to_date():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit(
            f"npm is needed once to install GraphiQL's pinned files into {NODE_MODULES} (npm ci); none found on PATH"
        )
    print(f"Installing GraphiQL's pinned packages into {NODE_MODULES} (npm ci) ...", flush=True)
    command = [npm, "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"]
    if subprocess.run(command, check=False).returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed")
    if lost := missing():
        sys.exit(f"npm ci finished, but these files are not in {NODE_MODULES}: {', '.join(lost)}")
