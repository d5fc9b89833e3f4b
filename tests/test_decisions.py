"""The decision log's domain operations (graphql_app.decisions), against the real database."""

from __future__ import annotations

import datetime
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models.signals import post_save
from django.utils import timezone

from graphql_app import decisions
from graphql_app.decisions import CATEGORIES, DecisionErrorCode
from graphql_app.markdown import AdrDocument, parse, render
from graphql_app.models import Decision
from tests.nodes import REPO, TEST_NODE_DEFAULTS, manage

pytestmark = pytest.mark.django_db

Status = Decision.Status


def proposal(**overrides: Any) -> dict[str, Any]:
    fields = {
        "title": "Keep sessions in memory",
        "category": "Backend",
        "context": "Sessions are live tasks.",
        "decision": "Keep them in the node's memory.",
        "consequences": "Clients are pinned to a node.",
    }
    return {**fields, **overrides}


def propose(**overrides: Any) -> Decision:
    return decisions.propose(**proposal(**overrides))


def accepted(**overrides: Any) -> Decision:
    return decisions.accept(propose(**overrides).number)


def refusal(call: Callable[[], object]) -> dict[str, list[str]]:
    """The {field: [codes]} of the ValidationError `call` raises."""
    with pytest.raises(ValidationError) as info:
        call()
    return {field: [str(error.code) for error in errors] for field, errors in info.value.error_dict.items()}


# --- propose ---------------------------------------------------------------------


def test_propose_numbers_records_one_past_the_highest_and_starts_them_proposed_today() -> None:
    first = propose()
    second = propose(title="Second")

    assert (first.number, second.number) == (1, 2)
    assert second.status == Status.PROPOSED
    assert second.date == timezone.localdate()
    assert second.superseded_by is None
    assert Decision.objects.get(number=2).title == "Second"


def test_propose_numbers_after_the_highest_even_when_records_were_loaded_with_gaps() -> None:
    Decision.objects.create(number=41, **proposal())

    assert propose().number == 42


def test_propose_keeps_a_given_date_trims_text_and_spells_the_category_as_listed() -> None:
    record = propose(
        title="  Spaced title \t",
        category="real-time",
        context="\n context \n",
        date=datetime.date(2024, 2, 29),
    )

    assert record.title == "Spaced title"
    assert record.category == "Real-Time"
    assert record.context == "context"
    assert record.date == datetime.date(2024, 2, 29)


@pytest.mark.parametrize("field", ["title", "category", "context", "decision", "consequences"])
@pytest.mark.parametrize("blank", ["", "   \n\t"])
def test_propose_requires_every_field(field: str, blank: str) -> None:
    assert refusal(lambda: propose(**{field: blank})) == {field: [DecisionErrorCode.REQUIRED]}
    assert not Decision.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("title", "x" * 201, DecisionErrorCode.TOO_LONG),
        ("context", "x" * 20_001, DecisionErrorCode.TOO_LONG),
        ("decision", "x" * 20_001, DecisionErrorCode.TOO_LONG),
        ("consequences", "x" * 20_001, DecisionErrorCode.TOO_LONG),
        ("category", "Kubernetes", DecisionErrorCode.INVALID_CATEGORY),
        ("title", "two\nlines", DecisionErrorCode.INVALID),
        ("context", "nul \x00 byte", DecisionErrorCode.INVALID),
        ("title", 42, DecisionErrorCode.INVALID),
        ("date", "2026-01-01", DecisionErrorCode.INVALID),
    ],
)
def test_propose_refuses_bad_fields(field: str, value: object, code: DecisionErrorCode) -> None:
    assert refusal(lambda: propose(**{field: value})) == {field: [code]}
    assert not Decision.objects.exists()


def test_propose_accepts_fields_exactly_at_their_limits() -> None:
    record = propose(title="t" * 200, context="c" * 20_000)

    assert len(record.title) == 200
    assert len(record.context) == 20_000


def test_propose_reports_every_bad_field_at_once() -> None:
    assert refusal(lambda: propose(title="", category="Nope", consequences=" ")) == {
        "title": [DecisionErrorCode.REQUIRED],
        "category": [DecisionErrorCode.INVALID_CATEGORY],
        "consequences": [DecisionErrorCode.REQUIRED],
    }


# --- get -------------------------------------------------------------------------------


def test_get_returns_the_record_by_number() -> None:
    record = propose()

    assert decisions.get(record.number) == record


@pytest.mark.parametrize("number", [99, 0, -1, 2**31, 10**30, True])
def test_get_raises_does_not_exist_for_numbers_without_a_record(number: int) -> None:
    propose()

    with pytest.raises(Decision.DoesNotExist):
        decisions.get(number)


# --- edit ----------------------------------------------------------------------------


def test_edit_changes_only_the_given_fields() -> None:
    record = propose()

    edited = decisions.edit(record.number, title="New title", category="infra")

    assert (edited.title, edited.category) == ("New title", "Infra")
    stored = Decision.objects.get(number=record.number)
    assert (stored.title, stored.category, stored.context) == ("New title", "Infra", record.context)
    assert stored.updated_at > record.updated_at


def test_edit_with_nothing_new_saves_nothing() -> None:
    record = propose()

    decisions.edit(record.number, title=f"  {record.title} ", context=None)

    assert Decision.objects.get(number=record.number).updated_at == record.updated_at


def test_edit_is_allowed_on_an_accepted_record() -> None:
    record = accepted()

    assert decisions.edit(record.number, consequences="Revised.").consequences == "Revised."


@pytest.mark.parametrize("make_final", [lambda n: decisions.deprecate(n), lambda n: decisions.supersede(n, by=9)])
def test_edit_refuses_deprecated_and_superseded_records(make_final: Callable[[int], Decision]) -> None:
    record = accepted()
    Decision.objects.create(number=9, **proposal())
    make_final(record.number)

    assert refusal(lambda: decisions.edit(record.number, title="Too late")) == {
        "number": [DecisionErrorCode.NOT_EDITABLE]
    }
    assert Decision.objects.get(number=record.number).title == record.title


def test_edit_refuses_bad_fields_and_changes_nothing() -> None:
    record = propose()

    assert refusal(lambda: decisions.edit(record.number, title="", category="Mainframe")) == {
        "title": [DecisionErrorCode.REQUIRED],
        "category": [DecisionErrorCode.INVALID_CATEGORY],
    }
    assert Decision.objects.get(number=record.number).title == record.title


def test_edit_of_a_missing_record_is_not_found() -> None:
    assert refusal(lambda: decisions.edit(5, title="x")) == {"number": [DecisionErrorCode.NOT_FOUND]}


# --- accept, deprecate ---------------------------------------------------------------------


def test_accept_moves_a_proposed_record_to_accepted() -> None:
    record = propose()

    assert decisions.accept(record.number).status == Status.ACCEPTED
    assert Decision.objects.get(number=record.number).status == Status.ACCEPTED


@pytest.mark.parametrize("status", [Status.ACCEPTED, Status.DEPRECATED, Status.SUPERSEDED])
def test_accept_refuses_anything_but_proposed(status: Status) -> None:
    Decision.objects.create(number=1, status=status, **proposal())

    assert refusal(lambda: decisions.accept(1)) == {"number": [DecisionErrorCode.INVALID_STATUS_TRANSITION]}
    assert Decision.objects.get(number=1).status == status


@pytest.mark.parametrize("status", [Status.PROPOSED, Status.ACCEPTED])
def test_deprecate_moves_proposed_and_accepted_records_to_deprecated(status: Status) -> None:
    Decision.objects.create(number=1, status=status, **proposal())

    assert decisions.deprecate(1).status == Status.DEPRECATED
    assert Decision.objects.get(number=1).status == Status.DEPRECATED


@pytest.mark.parametrize("status", [Status.DEPRECATED, Status.SUPERSEDED])
def test_deprecate_refuses_final_records(status: Status) -> None:
    Decision.objects.create(number=1, status=status, **proposal())

    assert refusal(lambda: decisions.deprecate(1)) == {"number": [DecisionErrorCode.INVALID_STATUS_TRANSITION]}


@pytest.mark.parametrize("operation", [decisions.accept, decisions.deprecate])
@pytest.mark.parametrize("number", [7, 0, -3, 2**40])
def test_status_changes_of_missing_records_are_not_found(operation: Callable[[int], Decision], number: int) -> None:
    assert refusal(lambda: operation(number)) == {"number": [DecisionErrorCode.NOT_FOUND]}


# --- supersede -------------------------------------------------------------------------


@pytest.mark.parametrize("successor_status", [Status.PROPOSED, Status.ACCEPTED])
def test_supersede_marks_an_accepted_record_superseded_by_a_live_one(successor_status: Status) -> None:
    old = accepted()
    new = Decision.objects.create(number=2, status=successor_status, **proposal(title="Successor"))

    superseded = decisions.supersede(old.number, by=new.number)

    assert superseded.status == Status.SUPERSEDED
    assert superseded.superseded_by == new
    stored = Decision.objects.get(number=old.number)
    assert (stored.status, stored.superseded_by_id) == (Status.SUPERSEDED, new.number)
    assert list(new.supersedes.all()) == [stored]
    assert Decision.objects.get(number=new.number).status == successor_status


@pytest.mark.parametrize("status", [Status.PROPOSED, Status.DEPRECATED, Status.SUPERSEDED])
def test_supersede_refuses_a_record_that_is_not_accepted(status: Status) -> None:
    Decision.objects.create(number=1, status=status, **proposal())
    propose()

    assert refusal(lambda: decisions.supersede(1, by=2)) == {"number": [DecisionErrorCode.INVALID_STATUS_TRANSITION]}


@pytest.mark.parametrize("status", [Status.DEPRECATED, Status.SUPERSEDED])
def test_supersede_refuses_a_successor_that_is_no_longer_live(status: Status) -> None:
    accepted()
    Decision.objects.create(number=2, status=status, **proposal())

    assert refusal(lambda: decisions.supersede(1, by=2)) == {"by": [DecisionErrorCode.INVALID_SUCCESSOR]}
    assert Decision.objects.get(number=1).status == Status.ACCEPTED


def test_supersede_refuses_a_record_superseding_itself() -> None:
    accepted()

    assert refusal(lambda: decisions.supersede(1, by=1)) == {"by": [DecisionErrorCode.SELF_SUPERSEDE]}


def test_supersede_names_the_missing_record() -> None:
    accepted()

    assert refusal(lambda: decisions.supersede(1, by=5)) == {"by": [DecisionErrorCode.NOT_FOUND]}
    assert refusal(lambda: decisions.supersede(5, by=1)) == {"number": [DecisionErrorCode.NOT_FOUND]}
    assert refusal(lambda: decisions.supersede(2**40, by=1)) == {"number": [DecisionErrorCode.NOT_FOUND]}


def test_a_chain_of_supersedes_cannot_loop_back() -> None:
    accepted()
    accepted()
    decisions.supersede(1, by=2)

    assert refusal(lambda: decisions.supersede(2, by=1)) == {"by": [DecisionErrorCode.INVALID_SUCCESSOR]}


# --- search, counts ------------------------------------------------------------------------


@pytest.fixture
def log() -> list[Decision]:
    return [
        propose(title="Pin sessions", category="Infra", context="Sticky COOKIES at the balancer."),
        accepted(title="Core channel layer", category="Real-Time", decision="Use BZPOPMIN lists."),
        propose(title="GraphQL API", category="Backend", consequences="Clients need no cookie."),
        accepted(title="Registry in Redis", category="Backend", context="Only the registry."),
    ]


@pytest.mark.parametrize(
    ("filters", "numbers"),
    [
        ({}, [1, 2, 3, 4]),
        ({"text": "cookie"}, [1, 3]),
        ({"text": "  bzpopmin "}, [2]),
        ({"text": "graphql"}, [3]),
        ({"text": ""}, [1, 2, 3, 4]),
        ({"category": "Backend"}, [3, 4]),
        ({"category": "real-time"}, [2]),
        ({"status": "accepted"}, [2, 4]),
        ({"status": Status.PROPOSED}, [1, 3]),
        ({"category": "Backend", "status": "accepted", "text": "registry"}, [4]),
        ({"category": "Security"}, []),
    ],
)
def test_search_filters_and_orders_by_number(log: list[Decision], filters: dict[str, str], numbers: list[int]) -> None:
    assert [record.number for record in decisions.search(**filters)] == numbers


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"category": "Mobile"}, {"category": [DecisionErrorCode.INVALID_CATEGORY]}),
        ({"status": "rejected"}, {"status": [DecisionErrorCode.INVALID_STATUS]}),
        ({"text": "x" * 201}, {"text": [DecisionErrorCode.TOO_LONG]}),
        ({"text": "a\x00b"}, {"text": [DecisionErrorCode.INVALID]}),
        (
            {"category": "Mobile", "status": "rejected"},
            {"category": [DecisionErrorCode.INVALID_CATEGORY], "status": [DecisionErrorCode.INVALID_STATUS]},
        ),
    ],
)
def test_search_refuses_bad_filters(filters: dict[str, str], expected: dict[str, list[str]]) -> None:
    assert refusal(lambda: decisions.search(**filters)) == expected


def test_category_counts_list_every_category_in_order_with_zeros(log: list[Decision]) -> None:
    counts = decisions.category_counts()

    assert list(counts) == list(CATEGORIES)
    assert counts["Backend"] == 2
    assert counts["Infra"] == counts["Real-Time"] == 1
    assert sum(counts.values()) == 4


def test_category_counts_keep_records_of_a_category_no_longer_listed() -> None:
    Decision.objects.create(number=1, **proposal(category="Legacy"))

    assert decisions.category_counts()["Legacy"] == 1


# --- markdown ----------------------------------------------------------------------------------


def test_to_markdown_renders_the_adr_format() -> None:
    record = propose(title="Pin sessions", category="Infra", date=datetime.date(2026, 11, 26))

    assert decisions.to_markdown(record) == (
        "# ADR 1: Pin sessions\n\n"
        "Status: Proposed · Date: 2026-11-26 · Category: Infra\n\n"
        "## Context\n\nSessions are live tasks.\n\n"
        "## Decision\n\nKeep them in the node's memory.\n\n"
        "## Consequences\n\nClients are pinned to a node.\n"
    )


def test_to_markdown_names_the_successor_of_a_superseded_record() -> None:
    accepted(date=datetime.date(2026, 1, 2))
    accepted()
    superseded = decisions.supersede(1, by=2)

    assert "\n\nStatus: Superseded · Date: 2026-01-02 · Category: Backend · Superseded by ADR 2\n\n" in (
        decisions.to_markdown(superseded)
    )


def test_markdown_round_trips_multi_paragraph_sections() -> None:
    accepted(context="First paragraph.\n\n- a list\n- of points\n\n### A subheading\n\nMore.")
    accepted()
    record = decisions.supersede(1, by=2)

    doc = parse(decisions.to_markdown(record))

    assert doc == AdrDocument.from_decision(record)
    assert render(doc) == decisions.to_markdown(record)


# --- every write is seen by post_save (the MCP notifications listen there) ---------


@pytest.fixture
def saves() -> Iterator[list[tuple[int, bool]]]:
    seen: list[tuple[int, bool]] = []

    def record(sender: type[Decision], instance: Decision, created: bool, **kwargs: Any) -> None:
        seen.append((instance.number, created))

    post_save.connect(record, sender=Decision, dispatch_uid="tests.test_decisions.saves")
    yield seen
    post_save.disconnect(sender=Decision, dispatch_uid="tests.test_decisions.saves")


def test_every_write_fires_post_save_once_for_the_record_it_changed(saves: list[tuple[int, bool]]) -> None:
    propose()
    propose()
    decisions.edit(1, title="Edited")
    decisions.edit(1, title="Edited")  # no change: no save
    decisions.accept(1)
    decisions.supersede(1, by=2)
    decisions.deprecate(2)

    assert saves == [(1, True), (2, True), (1, False), (1, False), (1, False), (2, False)]


# --- concurrency ---------------------------------------------------------------------------------

PROCESSES = 4
PROPOSALS_EACH = 10
# Each worker sets Django up, says it is ready, and proposes only once told to,
# so that all of them propose at the same moment.
WORKER = f"""
import sys
import django
django.setup()
from graphql_app import decisions
print("ready", flush=True)
sys.stdin.readline()
for index in range({PROPOSALS_EACH}):
    decisions.propose(title=f"Proposal {{index}}", category="Data", context="c", decision="d", consequences="e")
"""


def database_env(tmp_path: Path) -> dict[str, str]:
    """Environment for processes sharing this test's database: PostgreSQL's test
    database, or (SQLite's test database lives in memory) a migrated file."""
    if connection.vendor == "postgresql":
        url = urlsplit(os.environ["DATABASE_URL"])
        return {"DATABASE_URL": urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}"))}
    env = {"DATABASE_URL": "", "DJANGO_SQLITE_PATH": str(tmp_path / "db.sqlite3")}
    manage(env, "migrate", "--noinput")
    return env


def stored_numbers(env: dict[str, str]) -> list[int]:
    if connection.vendor == "postgresql":
        return sorted(Decision.objects.values_list("number", flat=True))
    with closing(sqlite3.connect(env["DJANGO_SQLITE_PATH"])) as db:
        return [number for (number,) in db.execute("SELECT number FROM graphql_app_decision ORDER BY number")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_proposals_from_several_processes_get_consecutive_numbers(tmp_path: Path) -> None:
    env = {**os.environ, **TEST_NODE_DEFAULTS, **database_env(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline() == b"ready\n"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        worker.stdin.flush()
    outputs = [worker.communicate(timeout=60) for worker in workers]

    assert [worker.returncode for worker in workers] == [0] * PROCESSES, [err.decode() for _, err in outputs]
    assert stored_numbers(env) == list(range(1, PROCESSES * PROPOSALS_EACH + 1))
