"""GraphiQL at /graphql in a real headless Chromium that can reach nothing but the node.

Chromium runs with tests/browser.py's OFFLINE_FLAGS: no host name resolves and
every address but loopback goes to a proxy that is not there. GraphiQL must
still render its editor and show a query's result, and DevTools' log of the
page's requests must name the node's origin only: a file fetched from a CDN
would show up there even though it failed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser import ARTIFACTS, OFFLINE_FLAGS, PATIENCE, chromium, requested_urls
from tests.nodes import Node, manage

NETWORK_SCHEMES = ("http", "https", "ws", "wss")


@pytest.fixture(scope="module")
def graphql_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node with the decision log in its own database, and GraphiQL on (DEBUG is off in tests)."""
    folder = tmp_path_factory.mktemp("graphiql-node")
    env = {
        "DJANGO_SQLITE_PATH": str(folder / "db.sqlite3"),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "GRAPHQL_GRAPHIQL": "1",
        # GraphiQL reads the schema by introspection.
        "GRAPHQL_INTROSPECTION": "1",
    }
    manage(env, "migrate", "--noinput")
    manage(env, "load_demo_decisions")
    node = Node(env=env, log_path=folder / "daphne.log").start()
    yield node
    node.stop()


@pytest.fixture
def offline_browser(tmp_path: Path) -> Iterator[Chrome]:
    with chromium(tmp_path / "chromium-profile", *OFFLINE_FLAGS, network_log=True) as driver:
        yield driver


def test_graphiql_runs_a_query_with_no_network_but_the_node(graphql_node: Node, offline_browser: Chrome) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    offline_browser.get(f"{graphql_node.url}/graphql")
    wait = WebDriverWait(offline_browser, PATIENCE)
    editor = wait.until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".graphiql-query-editor .CodeMirror"))
    )
    assert "decisions(first: 5)" in editor.text

    offline_browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    wait.until(expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, ".graphiql-response"), "totalCount"))
    result = offline_browser.find_element(By.CSS_SELECTOR, ".graphiql-response").text
    assert '"number": 1' in result
    assert "errors" not in result
    offline_browser.save_screenshot(str(ARTIFACTS / "graphiql-offline.png"))

    requested = requested_urls(offline_browser)
    assert f"{graphql_node.url}/graphql" in requested
    assert any("/static/graphiql/graphiql/graphiql.min" in url for url in requested)
    # What went over the network (not Chromium's own chrome:// pages, nor data: URLs inside the stylesheet).
    fetched = [url for url in requested if urlsplit(url).scheme in NETWORK_SCHEMES]
    assert [url for url in fetched if not url.startswith(f"{graphql_node.url}/")] == []
