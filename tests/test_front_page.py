"""The front page at `/`, against real nodes: what it says, that its snippets work, and what it never shows.

The snippets are taken from the page and run as a reader would paste them:
the Python one with this interpreter (the SDK is installed), the curl one in a
shell. The browser test reaches the same node by two names and checks that the
page follows the one the browser used.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from mcpsite.front_page import DOCS
from tests.browser import ARTIFACTS, chromium
from tests.mcp_http import open_session
from tests.nodes import REPO, Node, manage
from tests.redis_server import RedisServer

SECRET_KEY = secrets.token_urlsafe(50)
USERNAME = "reader"


@pytest.fixture(scope="module")
def front_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node with authorization off (the tests' default), the echo server, GraphiQL on, and a known secret key."""
    folder = tmp_path_factory.mktemp("front-node")
    env = {"MCP_NODE_ID": "front", "DJANGO_SECRET_KEY": SECRET_KEY, "GRAPHQL_GRAPHIQL": "1"}
    node = Node(env=env, log_path=folder / "daphne.log").start()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def guarded_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, str]]:
    """A node that requires tokens from its embedded authorization server, behind a TLS proxy; and a token."""
    folder = tmp_path_factory.mktemp("guarded-node")
    env = {
        "MCP_NODE_ID": "guarded",
        "MCP_AUTH": "embedded",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_SQLITE_PATH": str(folder / "db.sqlite3"),
        "DJANGO_BEHIND_TLS_PROXY": "1",
    }
    manage(env, "migrate", "--noinput")
    user = {"DJANGO_SUPERUSER_USERNAME": USERNAME, "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16)}
    manage({**env, **user, "DJANGO_SUPERUSER_EMAIL": "reader@example.invalid"}, "createsuperuser", "--noinput")
    token = manage(env, "mint_token", USERNAME, "--scope", "mcp:read mcp:write").strip()
    node = Node(env=env, log_path=folder / "daphne.log").start()
    yield node, token
    node.stop()


def snippet(page: str, name: str) -> str:
    found = re.search(rf'<pre class="literal-block" id="snippet-{name}">(.*?)</pre>', page, re.DOTALL)
    assert found is not None, f"no {name} snippet"
    return html.unescape(found.group(1))


def cell(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">(.*?)</', page, re.DOTALL)
    assert found is not None, element_id
    return html.unescape(found.group(1))


def run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_page_says_what_the_node_is_and_where_its_endpoint_is(front_node: Node) -> None:
    page = httpx.get(f"{front_node.url}/", timeout=10.0)

    assert page.status_code == 200
    assert "no-store" in page.headers["cache-control"]
    assert cell(page.text, "mcp-url") == f"{front_node.url}/mcp"
    assert cell(page.text, "node-id") == "front"
    assert cell(page.text, "nodes-alive") == "1"
    assert "2025-11-25" in page.text
    assert "2026-07-28" in page.text
    assert '"mcpServers"' in html.unescape(page.text)
    for target in ('href="/graphql"', 'href="/admin/"', "docs/architecture.md"):
        assert target in page.text
    assert 'id="tokens"' not in page.text


def test_the_python_snippet_lists_the_tools(front_node: Node) -> None:
    page = httpx.get(f"{front_node.url}/", timeout=10.0).text

    assert run_python(snippet(page, "python")).strip() == "['echo']"


def test_the_curl_snippet_opens_a_session(front_node: Node) -> None:
    assert shutil.which("curl"), "curl is installed by tests/system_packages.sh"
    page = httpx.get(f"{front_node.url}/", timeout=10.0).text

    command = snippet(page, "curl")
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/1.1 200")
    assert "mcp-session-id:" in result.stdout.lower()


def test_the_page_shows_no_session_id_and_no_secret(front_node: Node) -> None:
    with httpx.Client(timeout=10.0) as client:
        before = int(cell(client.get(f"{front_node.url}/").text, "sessions"))
        session_ids = [open_session(client, front_node.mcp_url) for _ in range(2)]
        page = client.get(f"{front_node.url}/").text

    assert cell(page, "sessions") == str(before + 2)
    for session_id in session_ids:
        assert session_id not in page
        # The route is on the page on purpose; what follows it is the secret part.
        assert session_id.split(".", 1)[1] not in page
    assert SECRET_KEY not in page
    assert "BEGIN" not in page  # no PEM of any key


def test_without_redis_the_page_answers_and_says_unknown(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path).start()
    node = Node(env={"MCP_NODE_ID": "cut-off", "REDIS_URL": redis_server.url}, log_path=tmp_path / "node.log").start()
    try:
        before = httpx.get(f"{node.url}/", timeout=10.0)
        redis_server.stop()
        after = httpx.get(f"{node.url}/", timeout=10.0)
    finally:
        redis_server.stop()
        node.stop()

    assert cell(before.text, "nodes-alive") == "1"
    assert after.status_code == 200
    assert cell(after.text, "nodes-alive").startswith("unknown")


def test_with_tokens_required_the_page_says_how_to_get_one(guarded_node: tuple[Node, str]) -> None:
    node, token = guarded_node
    # As behind the TLS proxy: the page names the endpoint as the reader reached it, https.
    page = httpx.get(f"{node.url}/", headers={"X-Forwarded-Proto": "https"}, timeout=10.0).text
    public = f"https://127.0.0.1:{node.port}"

    assert cell(page, "mcp-url") == f"{public}/mcp"
    assert 'id="tokens"' in page
    assert f"{public}/.well-known/oauth-protected-resource/mcp" in page
    assert f"{public}/oauth/token" in page
    assert "manage.py mint_token" in page
    assert "$MCP_TOKEN" in snippet(page, "curl")
    assert 'href="/graphql"' not in page
    assert "GraphiQL is off on this node" in page
    assert SECRET_KEY not in page
    assert "BEGIN" not in page

    plain = httpx.get(f"{node.url}/", timeout=10.0).text
    assert run_python(snippet(plain, "python"), MCP_TOKEN=token).strip() == "['echo']"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chrome]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_snippets_follow_the_url_the_browser_used(front_node: Node, browser: Chrome, host: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    url = f"http://{host}:{front_node.port}"
    browser.get(f"{url}/")

    assert browser.find_element(By.TAG_NAME, "h1").text == "The Model Context Protocol over Streamable HTTP"
    assert browser.find_element(By.ID, "mcp-url").text == f"{url}/mcp"
    for name in ("python", "desktop", "curl"):
        assert f"{url}/mcp" in browser.find_element(By.ID, f"snippet-{name}").text, name
    # The admin's stylesheet is on: its header is not the browser's default (transparent).
    header = browser.execute_script("return getComputedStyle(document.getElementById('header')).backgroundColor")
    assert header not in ("", "rgba(0, 0, 0, 0)", "transparent")
    browser.save_screenshot(str(ARTIFACTS / f"front-page-{host}.png"))


def test_the_docs_the_page_names_are_in_the_repository() -> None:
    assert [path for path, _ in DOCS if not (REPO / path).is_file()] == []
