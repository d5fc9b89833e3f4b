"""The "Active MCP sessions" admin page in a real headless Chromium, against a real daphne node.

An MCP client opens a session on the node; an operator logs in through the
admin's login form, finds the session, and closes it with its button. The
session must be gone everywhere: from the page, from the node (/healthz and a
404 to the client) and from the registry.

Chromium is Debian's, run as tests/browser.py says.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from sessions_app.cluster.routing import short_id
from tests.browser import ARTIFACTS, PATIENCE, chromium
from tests.mcp_http import open_session, session_headers
from tests.nodes import Node, manage

LIST_PATH = "/admin/sessions_app/activesession/"
USERNAME = "operator"
NODE_ID = "browser-node"


@pytest.fixture(scope="module")
def password() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def admin_node(tmp_path_factory: pytest.TempPathFactory, password: str) -> Iterator[Node]:
    """A daphne node with its own SQLite database, migrated, and a superuser in it."""
    folder = tmp_path_factory.mktemp("admin-node")
    env = {
        "DJANGO_SQLITE_PATH": str(folder / "db.sqlite3"),
        # One key for every process that touches this database.
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        # Plain HTTP on loopback: cookies marked Secure would not come back.
        "DJANGO_SECURE_COOKIES": "0",
        "MCP_NODE_ID": NODE_ID,
    }
    manage(env, "migrate", "--noinput")
    superuser = {
        "DJANGO_SUPERUSER_USERNAME": USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": password,
        "DJANGO_SUPERUSER_EMAIL": "operator@example.invalid",
    }
    manage({**env, **superuser}, "createsuperuser", "--noinput")
    node = Node(env=env, log_path=folder / "daphne.log").start()
    yield node
    node.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def sessions_on(node: Node) -> int:
    count: int = httpx.get(f"{node.url}/healthz", timeout=5.0).json()["sessions"]
    return count


def log_in(browser: WebDriver, node: Node, password: str) -> None:
    browser.get(f"{node.url}/admin/login/?next={LIST_PATH}")
    browser.find_element(By.ID, "id_username").send_keys(USERNAME)
    browser.find_element(By.ID, "id_password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "#login-form input[type=submit]").click()
    WebDriverWait(browser, PATIENCE).until(expected_conditions.url_to_be(f"{node.url}{LIST_PATH}"))


def session_rows(browser: WebDriver, session_id: str) -> list[WebElement]:
    return list(browser.find_elements(By.XPATH, f"//tr[td[contains(., '{short_id(session_id)}')]]"))


def test_an_operator_closes_a_session_from_the_admin(admin_node: Node, browser: WebDriver, password: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with httpx.Client(timeout=10.0) as client:
        session_id = open_session(client, admin_node.mcp_url)
        assert sessions_on(admin_node) == 1

        log_in(browser, admin_node, password)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Active MCP sessions"
        [row] = session_rows(browser, session_id)
        assert session_id not in browser.page_source
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert cells[:4] == [short_id(session_id), NODE_ID, "alive", "-"]  # not adopted
        assert cells[6:8] == ["raw-test/1", "2025-11-25"]
        browser.save_screenshot(str(ARTIFACTS / "admin-sessions.png"))

        row.find_element(By.CSS_SELECTOR, "input[type=submit][value=Close]").click()
        message = WebDriverWait(browser, PATIENCE).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".messagelist .success"))
        )
        assert message.text == f"Closed MCP session {short_id(session_id)} on node {NODE_ID}."
        assert session_rows(browser, session_id) == []
        assert "No MCP sessions." in browser.find_element(By.ID, "result_list").text
        browser.save_screenshot(str(ARTIFACTS / "admin-sessions-after-close.png"))

        assert sessions_on(admin_node) == 0
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert client.post(admin_node.mcp_url, json=ping, headers=session_headers(session_id)).status_code == 404
    # The page reads the registry afresh: the record is gone, not just hidden.
    browser.refresh()
    assert session_rows(browser, session_id) == []
