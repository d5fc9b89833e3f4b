"""Run the official conformance suite's `authorization` scenarios against the embedded authorization server.

    python -m tests.conformance.authorization    # what `make conformance` runs after the server suites

It starts one daphne node on a free loopback port (its own SQLite file, the
test signing key), registers through `manage.py shell` a confidential client
whose redirect URI is the suite's callback (`http://127.0.0.1:<port>/callback`)
and an ordinary user, and runs

    conformance authorization --url <issuer> --client-id ... --client-secret ... --resource <issuer>/mcp -p <port>

The suite's `authorization-code-grant` prints an authorization URL for a
person to open in a browser, then waits for the redirect to its callback.
This runner is that person: when the URL appears in the suite's output it
opens it with a cookie jar, logs in on the login page, presses Allow on the
consent page and follows the redirect to the callback, like a browser. The
server gets no special case: no pre-approved client, no test-only login.

The exit status is the suite's: non-zero if any scenario failed. Standard
library only (the node is started with tests.nodes, as run.py --serve does).
"""

from __future__ import annotations

import argparse
import html.parser
import http.cookiejar
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tests.conformance.run import NEXT_CLI, NODE, NODE_DIR, REPO_ROOT, ensure_node

USERNAME = "conformance"
# The suite prints this line right before the authorization URL, and the
# second once its callback server listens (after the URL).
URL_PROMPT = "Access the following URL in your browser"
CALLBACK_READY = "Callback server started"

SETUP_SCRIPT = """
import os
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_application_model
user_model = get_user_model()
user, _ = user_model.objects.get_or_create(username=os.environ["CONFORMANCE_USER"])
user.set_password(os.environ["CONFORMANCE_PASSWORD"])
user.save()
application_model = get_application_model()
application_model.objects.filter(client_id=os.environ["CONFORMANCE_CLIENT_ID"]).delete()
application_model.objects.create(
    name="MCP conformance suite",
    client_id=os.environ["CONFORMANCE_CLIENT_ID"],
    client_secret=os.environ["CONFORMANCE_CLIENT_SECRET"],
    client_type=application_model.CLIENT_CONFIDENTIAL,
    authorization_grant_type=application_model.GRANT_AUTHORIZATION_CODE,
    redirect_uris=os.environ["CONFORMANCE_REDIRECT_URI"],
)
"""


class FormReader(html.parser.HTMLParser):
    """The action, hidden fields and submit buttons of the first <form> in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}
        self._inside = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and not self._done:
            self._inside = True
            self.action = values.get("action", "")
        elif tag == "input" and self._inside and "name" in values:
            kind = values.get("type", "text")
            if kind == "hidden":
                self.fields[values["name"]] = values.get("value", "")
            elif kind == "submit":
                self.buttons[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._inside:
            self._inside, self._done = False, True


def read_form(page: str) -> FormReader:
    reader = FormReader()
    reader.feed(page)
    if reader.action is None:
        raise RuntimeError(f"no form on the page:\n{page[:2000]}")
    return reader


class Person:
    """A user at a browser: logs in when asked, allows the client, lets the redirect happen."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def authorize(self, url: str) -> None:
        page, at = self._open(url)
        if "/oauth/login" in urllib.parse.urlsplit(at).path:
            form = read_form(page)
            fields = {**form.fields, "username": self.username, "password": self.password}
            page, at = self._open(urllib.parse.urljoin(at, form.action or at), fields)
        form = read_form(page)
        if "allow" not in form.buttons:
            raise RuntimeError(f"no Allow button on the consent page {at}:\n{page[:2000]}")
        # Allow: the server redirects to the suite's callback, which the opener follows.
        _, at = self._open(urllib.parse.urljoin(at, form.action or at), {**form.fields, "allow": form.buttons["allow"]})
        print(f"[authorization runner] consent given; the browser ended at {at.split('?')[0]}", flush=True)

    def _open(self, url: str, fields: dict[str, str] | None = None) -> tuple[str, str]:
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        with self.browser.open(urllib.request.Request(url, data=data), timeout=30) as response:  # noqa: S310
            return response.read().decode(errors="replace"), response.geturl()


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def run_suite(issuer: str, client_id: str, secret: str, callback_port: int, person: Person, output_dir: Path) -> int:
    command = [
        str(NODE),
        str(NEXT_CLI),
        "authorization",
        "--url",
        issuer,
        "--client-id",
        client_id,
        "--client-secret",
        secret,
        "--resource",
        f"{issuer}/mcp",
        "-p",
        str(callback_port),
        "--output-dir",
        str(output_dir),
    ]
    env = {**os.environ, "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    failures: list[BaseException] = []
    with subprocess.Popen(
        command, cwd=NODE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:

        def act(url: str) -> None:
            try:
                person.authorize(url)
            except Exception as error:
                failures.append(error)
                print(f"[authorization runner] the browser step failed: {error!r}", flush=True)
                # Otherwise the suite waits five minutes for a callback that will not come.
                process.kill()

        assert process.stdout is not None
        url: str | None = None
        expect_url = False
        for line in process.stdout:
            sys.stdout.write(line)
            if URL_PROMPT in line:
                expect_url = True
            elif expect_url:
                url, expect_url = line.strip(), False
            elif CALLBACK_READY in line and url is not None:
                threading.Thread(target=act, args=(url,), daemon=True).start()
                url = None
        returncode = process.wait()
    return 1 if failures else returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, help="keep the suite's checks.json files and the node's log here")
    args = parser.parse_args(argv)

    ensure_node()
    from tests.nodes import TEST_NODE_DEFAULTS, Node, free_port

    with tempfile.TemporaryDirectory(prefix="conformance-authorization-") as scratch:
        output_dir = args.output_dir.resolve() if args.output_dir else Path(scratch)
        output_dir.mkdir(parents=True, exist_ok=True)
        port, callback_port = free_port(), free_port()
        issuer = f"http://127.0.0.1:{port}"
        node_env = {
            "DJANGO_SQLITE_PATH": str(output_dir / "authorization.sqlite3"),
            "MCP_RESOURCE_URI": f"{issuer}/mcp",
            # Plain http on loopback: the browser must get its session cookie back.
            "DJANGO_SECURE_COOKIES": "0",
        }
        client_id, secret, password = (
            "conformance-" + secrets.token_hex(4),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(16),
        )
        env = {
            **os.environ,
            **TEST_NODE_DEFAULTS,
            **node_env,
            "CONFORMANCE_USER": USERNAME,
            "CONFORMANCE_PASSWORD": password,
            "CONFORMANCE_CLIENT_ID": client_id,
            "CONFORMANCE_CLIENT_SECRET": secret,
            "CONFORMANCE_REDIRECT_URI": f"http://127.0.0.1:{callback_port}/callback",
        }
        manage(env, "migrate", "--noinput")
        manage(env, "shell", "-c", SETUP_SCRIPT)
        node = Node(env=node_env, log_path=output_dir / "daphne.log", port=port).start()
        try:
            returncode = run_suite(issuer, client_id, secret, callback_port, Person(USERNAME, password), output_dir)
        finally:
            node.stop()
        if returncode != 0:
            print(node.log())
        print(
            f"conformance authorization against {issuer}: {'PASS' if returncode == 0 else f'FAIL (exit {returncode})'}"
        )
        return 0 if returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
