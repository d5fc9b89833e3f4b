"""The admin's "Active MCP sessions" page, through Django's test client and this process's registry."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from sessions_app.cluster.registry import SessionRecord, SessionRegistry
from sessions_app.cluster.routing import session_hash, short_id
from sessions_app.session.close_reason import CloseReason
from sessions_app.session.session import CLOSE_MESSAGE
from tests.session_records import fresh_registry, record, unreachable_registry

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:sessions_app_activesession_changelist")


def close_url(session: SessionRecord) -> str:
    return reverse("admin:sessions_app_activesession_close", args=[session_hash(session.session_id)])


@pytest.fixture
def registry(settings: Settings) -> SessionRegistry:
    return fresh_registry(settings)


@pytest.fixture
def staff(django_user_model: type[User]) -> User:
    """A staff user with no permissions at all: the page asks for staff, nothing more."""
    return django_user_model.objects.create_user("operator", password=None, is_staff=True)


@pytest.fixture
def staff_client(client: Client, staff: User) -> Client:
    client.force_login(staff)
    return client


def page(client: Client, url: str = LIST_URL) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def row(html: str, session: SessionRecord) -> str:
    """The one table row that shows `session`."""
    rows = [part for part in html.split("<tr")[1:] if short_id(session.session_id) in part]
    assert len(rows) == 1, f"expected one row for {short_id(session.session_id)}, found {len(rows)}"
    return rows[0].split("</tr>")[0]


def cell(row_html: str, field: str) -> str:
    """The text of the row's `field-<field>` cell, tags removed, whitespace collapsed."""
    match = re.search(rf'<td class="field-{field}">(.*?)</td>', row_html, re.DOTALL)
    assert match is not None, f"no {field} cell in {row_html}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- who may look -------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page(client: Client, registry: SessionRegistry) -> None:
    registry.add(record("node-a", "boot-a"))

    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_users_who_are_not_staff_are_sent_to_the_login_page(
    client: Client, django_user_model: type[User], registry: SessionRegistry
) -> None:
    session = record("node-a", "boot-a")
    registry.add(session)
    client.force_login(django_user_model.objects.create_user("visitor", password=None))

    listing = client.get(LIST_URL)
    closing = client.post(close_url(session))

    assert listing.status_code == 302
    assert listing["Location"].startswith(reverse("admin:login"))
    assert closing.status_code == 302
    assert closing["Location"].startswith(reverse("admin:login"))
    assert registry.get(session.session_id) == session


def test_staff_find_the_page_in_the_admin_index_without_add_or_change(
    staff_client: Client, registry: SessionRegistry
) -> None:
    index = page(staff_client, reverse("admin:index"))

    assert "Active MCP sessions" in index
    assert LIST_URL in index
    assert "/admin/sessions_app/activesession/add/" not in index


def test_the_model_has_no_add_change_or_delete_views(admin_client: Client, registry: SessionRegistry) -> None:
    # There is no table behind the model: these would be 500s, not pages.
    for url in ("add/", "1/change/", "1/delete/", "1/history/"):
        assert admin_client.get(f"{LIST_URL}{url}").status_code == 404


# --- what the page shows ----------------------------------------------------------


def test_staff_see_every_record_with_its_node_alive_or_dead(staff_client: Client, registry: SessionRegistry) -> None:
    live = record("node-a", "boot-a", principal="alice")
    of_dead_node = record("node-b", "boot-b")
    of_previous_life = record("node-a", "boot-before-restart")
    for session in (live, of_dead_node, of_previous_life):
        registry.add(session)
    registry.heartbeat("node-a", "boot-a")

    html = page(staff_client)

    assert cell(row(html, live), "node") == "node-a"
    assert cell(row(html, live), "alive") == "alive"
    assert cell(row(html, live), "client") == "raw-test/1"
    assert cell(row(html, live), "protocol") == "2025-11-25"
    assert cell(row(html, live), "principal") == "alice"
    assert cell(row(html, of_dead_node), "alive") == "dead"
    assert cell(row(html, of_dead_node), "principal") == "-"
    assert cell(row(html, of_previous_life), "alive") == "dead"
    assert cell(row(html, live), "adopted") == "-"


def test_an_adopted_session_shows_the_node_it_came_from(staff_client: Client, registry: SessionRegistry) -> None:
    adopted = record("node-a", "boot-a").owned_by("node-c", "boot-c")
    registry.add(adopted)

    html = page(staff_client)

    assert cell(row(html, adopted), "node") == "node-c"
    assert cell(row(html, adopted), "adopted") == "node-a"


def test_rows_show_age_and_ttl(staff_client: Client, registry: SessionRegistry, settings: Settings) -> None:
    session = record("node-a", "boot-a", age=2 * 3600 + 5 * 60 + 30)
    registry.add(session)

    html = row(page(staff_client), session)

    assert cell(html, "age") == "2h 5m"
    # The in-process registry keeps records for MCP_SESSION_TTL (30 days): just under that is left.
    assert settings.MCP_SESSION_TTL == 30 * 86400
    assert cell(html, "ttl") == "29d 23h"


def test_the_page_never_shows_a_full_session_id(staff_client: Client, registry: SessionRegistry) -> None:
    session = record("node-a", "boot-a")
    registry.add(session)

    html = page(staff_client)

    assert short_id(session.session_id) in html
    assert session.session_id not in html


def test_the_node_filter_shows_one_nodes_sessions_and_links_every_node(
    staff_client: Client, registry: SessionRegistry
) -> None:
    on_a = record("node-a", "boot-a")
    on_b = record("node-b", "boot-b")
    registry.add(on_a)
    registry.add(on_b)
    registry.heartbeat("node-c", "boot-c")

    everything = page(staff_client)
    only_b = page(staff_client, f"{LIST_URL}?node=node-b")

    for node in ("node-a", "node-b", "node-c"):
        assert f'href="?node={node}"' in everything
    assert short_id(on_a.session_id) in everything
    assert short_id(on_b.session_id) in only_b
    assert short_id(on_a.session_id) not in only_b


def test_an_empty_registry_says_so(staff_client: Client, registry: SessionRegistry) -> None:
    assert "No MCP sessions." in page(staff_client)


def test_an_unreachable_registry_is_an_error_message_not_a_500(staff_client: Client, settings: Settings) -> None:
    unreachable_registry(settings)

    response = staff_client.get(LIST_URL)

    assert response.status_code == 200
    [message] = messages_of(response)
    assert message.startswith("The session registry is unavailable")


# --- closing ------------------------------------------------------------------------


def test_close_ends_the_session_through_its_owner_and_deletes_the_record(
    staff_client: Client, registry: SessionRegistry
) -> None:
    channel = f"mcp-session.test!{secrets.token_hex(6)}"
    session = record("node-a", "boot-a", channel_name=channel)
    registry.add(session)
    registry.heartbeat("node-a", "boot-a")

    response = staff_client.post(close_url(session), follow=True)

    assert response.redirect_chain == [(LIST_URL, 302)]
    assert messages_of(response) == [f"Closed MCP session {short_id(session.session_id)} on node node-a."]
    assert registry.get(session.session_id) is None
    assert "No MCP sessions." in response.content.decode()
    # The owner's channel got the close message of the one close path, naming the session.
    expected = {"type": CLOSE_MESSAGE, "session": session.session_id, "reason": CloseReason.OPERATOR}
    assert receive(channel) == expected


def test_close_deletes_the_record_of_a_session_held_nowhere(staff_client: Client, registry: SessionRegistry) -> None:
    orphan = record("node-gone", "boot-gone")
    registry.add(orphan)

    response = staff_client.post(close_url(orphan), follow=True)

    assert messages_of(response) == [f"Closed MCP session {short_id(orphan.session_id)} on node node-gone."]
    assert registry.get(orphan.session_id) is None


def test_close_returns_to_the_filtered_list(staff_client: Client, registry: SessionRegistry) -> None:
    session = record("node-b", "boot-b")
    registry.add(session)

    response = staff_client.post(close_url(session), {"node": "node-b"})

    assert response.status_code == 302
    assert response["Location"] == f"{LIST_URL}?node=node-b"


def test_closing_a_session_that_is_gone_says_so(staff_client: Client, registry: SessionRegistry) -> None:
    gone = record("node-a", "boot-a")

    response = staff_client.post(close_url(gone), follow=True)

    assert messages_of(response) == ["That MCP session is already gone."]


def test_close_by_get_is_refused(staff_client: Client, registry: SessionRegistry) -> None:
    session = record("node-a", "boot-a")
    registry.add(session)

    response = staff_client.get(close_url(session))

    assert response.status_code == 405
    assert registry.get(session.session_id) == session


def test_close_needs_the_csrf_token_of_the_page(staff: User, registry: SessionRegistry) -> None:
    session = record("node-a", "boot-a")
    registry.add(session)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)

    forged = browser.post(close_url(session))
    assert forged.status_code == 403
    assert registry.get(session.session_id) == session

    form = row(page(browser), session)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token is not None
    genuine = browser.post(close_url(session), {"csrfmiddlewaretoken": token.group(1)})
    assert genuine.status_code == 302
    assert registry.get(session.session_id) is None


def receive(channel: str) -> dict[str, Any]:
    """The next message on `channel` of this process's channel layer; fails after 2 s rather than hang."""
    layer = get_channel_layer()
    assert layer is not None

    async def next_message() -> dict[str, Any]:
        async with asyncio.timeout(2):
            message: dict[str, Any] = await layer.receive(channel)
            return message

    return async_to_sync(next_message)()
