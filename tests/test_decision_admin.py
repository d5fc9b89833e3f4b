"""The decision log's admin, through Django's test client: every write goes through graphql_app.decisions."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from graphql_app import decisions
from graphql_app.models import Decision

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:graphql_app_decision_changelist")
ADD_URL = reverse("admin:graphql_app_decision_add")

FORM = {
    "title": "Cache counts",
    "category": "Backend",
    "date": "2026-11-26",
    "context": "Counts are read often.",
    "decision": "Cache them.",
    "consequences": "They may lag.",
}


def change_url(number: int) -> str:
    return reverse("admin:graphql_app_decision_change", args=[Decision.objects.get(number=number).pk])


def propose(**overrides: Any) -> Decision:
    fields = {k: v for k, v in FORM.items() if k != "date"}
    return decisions.propose(**{**fields, **overrides})


def test_the_list_filters_by_status_and_category_and_searches(admin_client: Client) -> None:
    propose(title="Pin sessions", category="Infra")
    decisions.accept(propose(title="Core layer", category="Real-Time").number)

    everything = admin_client.get(LIST_URL)
    accepted = admin_client.get(LIST_URL, {"status__exact": "accepted"})
    infra = admin_client.get(LIST_URL, {"category__exact": "Infra"})
    searched = admin_client.get(LIST_URL, {"q": "core"})

    assert everything.status_code == 200
    assert b"Pin sessions" in everything.content
    assert b"Core layer" in everything.content
    assert b"Pin sessions" not in accepted.content
    assert b"Core layer" in accepted.content
    assert b"Pin sessions" in infra.content
    assert b"Core layer" not in infra.content
    assert b"Pin sessions" not in searched.content
    assert b"Core layer" in searched.content


def test_adding_proposes_the_next_number(admin_client: Client) -> None:
    propose()

    response = admin_client.post(ADD_URL, {**FORM, "title": "  Second  "})

    assert response.status_code == 302
    record = decisions.get(2)
    assert (record.title, record.status, record.date.isoformat()) == ("Second", "proposed", "2026-11-26")


def test_the_form_shows_the_domains_refusals(admin_client: Client) -> None:
    response = admin_client.post(ADD_URL, {**FORM, "title": "two\r\nlines"})

    assert response.status_code == 200
    assert b"The title must be a single line." in response.content
    assert not Decision.objects.exists()


def test_changing_edits_the_text(admin_client: Client) -> None:
    record = propose()

    response = admin_client.post(change_url(record.number), {**FORM, "title": "Edited", "category": "Data"})

    assert response.status_code == 302
    edited = decisions.get(record.number)
    assert (edited.title, edited.category, edited.status) == ("Edited", "Data", "proposed")


def test_deprecated_records_are_read_only_and_nothing_is_deleted(admin_client: Client) -> None:
    record = decisions.deprecate(propose().number)

    page = admin_client.get(change_url(record.number))
    post = admin_client.post(change_url(record.number), {**FORM, "title": "Edited"})
    delete = admin_client.get(reverse("admin:graphql_app_decision_delete", args=[record.pk]))

    assert page.status_code == 200
    assert b'name="title"' not in page.content
    assert post.status_code == 403
    assert delete.status_code == 403
    assert decisions.get(record.number).title == FORM["title"]


def test_actions_change_status_through_the_domain_and_report_refusals(admin_client: Client) -> None:
    proposed = propose()
    deprecated = decisions.deprecate(propose().number)

    response = admin_client.post(
        LIST_URL,
        {"action": "accept_selected", "_selected_action": [proposed.pk, deprecated.pk]},
        follow=True,
    )

    assert decisions.get(proposed.number).status == "accepted"
    assert decisions.get(deprecated.number).status == "deprecated"
    messages = [str(message) for message in response.context["messages"]]
    assert "ADR 2 is deprecated; only proposed records can be accepted." in messages
    assert "Accepted: ADR 1." in messages
