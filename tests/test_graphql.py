"""/graphql through Django's async test client: queries, pagination, mutations, and bad input."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import strawberry
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from pytest_django import Settings

from graphql_app import decisions
from graphql_app.api.error_policy import MaskServerErrors, Schema
from graphql_app.api.pagination import decode_cursor, encode_cursor
from graphql_app.decisions import CATEGORIES
from graphql_app.management.commands.graphql_schema import SCHEMA_FILE, schema_text
from graphql_app.models import Decision

URL = "/graphql"

# Async tests touch the database from worker threads, outside a test transaction.
db = pytest.mark.django_db(transaction=True)

DECISION_FIELDS = """
    number title status date category context decision consequences markdown
    supersededByNumber supersededBy { number title status }
"""

DECISIONS = """
query Decisions($first: Int! = 20, $after: String, $category: String, $status: DecisionStatus, $search: String) {
  decisions(first: $first, after: $after, category: $category, status: $status, search: $search) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { number title status category } }
  }
}
"""

DECISION = f"query One($number: Int!) {{ decision(number: $number) {{ {DECISION_FIELDS} }} }}"

CATEGORY_COUNTS = "{ categoryCounts { category count } }"

PAYLOAD = f"decision {{ {DECISION_FIELDS} }} errors {{ field code message }}"

PROPOSE = f"""
mutation Propose($input: ProposeDecisionInput!) {{ proposeDecision(input: $input) {{ {PAYLOAD} }} }}
"""
EDIT = f"""
mutation Edit($number: Int!, $input: EditDecisionInput!) {{
  editDecision(number: $number, input: $input) {{ {PAYLOAD} }}
}}
"""
ACCEPT = f"mutation Accept($number: Int!) {{ acceptDecision(number: $number) {{ {PAYLOAD} }} }}"
DEPRECATE = f"mutation Deprecate($number: Int!) {{ deprecateDecision(number: $number) {{ {PAYLOAD} }} }}"
SUPERSEDE = f"""
mutation Supersede($number: Int!, $by: Int!) {{ supersedeDecision(number: $number, by: $by) {{ {PAYLOAD} }} }}
"""

PROPOSAL: dict[str, Any] = {
    "title": "Serve GraphQL statelessly",
    "category": "Backend",
    "context": "Any node must answer any API request.",
    "decision": "Keep nothing between requests.",
    "consequences": "The balancer may round-robin /graphql.",
}


async def post(client: AsyncClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST a GraphQL request as a non-browser client would (no cookie, no CSRF token); the JSON answer."""
    response = await client.post(URL, {"query": query, "variables": variables}, content_type="application/json")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = json.loads(response.content)
    return body


async def data(client: AsyncClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = await post(client, query, variables)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


def the_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body["errors"]
    error: dict[str, Any] = body["errors"][0]
    return error


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    # CSRF checks on, as in production: the API must work without a token.
    yield AsyncClient(enforce_csrf_checks=True)
    # The ORM ran in asgiref's worker thread, whose connection the test client
    # never closes (it keeps connections open between requests on purpose).
    # Close it, or PostgreSQL refuses to drop the test database at the end.
    await sync_to_async(connections.close_all)()


def make_log() -> list[Decision]:
    """Seven records: 1-5 Backend (2 and 4 accepted), 6 Infra, 7 Security deprecated; 'cache' in 3 and 6."""
    records = []
    for number in range(1, 8):
        category = "Backend" if number <= 5 else "Infra" if number == 6 else "Security"
        context = "We cache the registry." if number in (3, 6) else "Plain context."
        records.append(decisions.propose(**{**PROPOSAL, "title": f"Decision {number}", "category": category}))
        decisions.edit(number, context=context)
    decisions.accept(2)
    decisions.accept(4)
    decisions.deprecate(7)
    return records


@pytest.fixture
async def log() -> list[Decision]:
    return await sync_to_async(make_log)()


def numbers(connection: dict[str, Any]) -> list[int]:
    return [edge["node"]["number"] for edge in connection["edges"]]


# --- the committed schema ------------------------------------------------------------------


def test_committed_schema_matches_the_live_schema() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), "run `manage.py graphql_schema`"


# --- queries -------------------------------------------------------------------------------


@db
async def test_pages_cover_every_record_once_in_number_order(client: AsyncClient, log: list[Decision]) -> None:
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        page = (await data(client, DECISIONS, {"first": 3, "after": after}))["decisions"]
        pages += 1
        assert page["totalCount"] == 7
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        seen += numbers(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == [1, 2, 3, 4, 5, 6, 7]
    assert pages == 3


@db
async def test_a_page_continues_after_its_cursor_even_when_records_are_added(
    client: AsyncClient, log: list[Decision]
) -> None:
    first = (await data(client, DECISIONS, {"first": 2}))["decisions"]
    await sync_to_async(decisions.propose)(**PROPOSAL)

    second = (await data(client, DECISIONS, {"first": 2, "after": first["pageInfo"]["endCursor"]}))["decisions"]

    assert numbers(first) == [1, 2]
    assert numbers(second) == [3, 4]
    assert second["totalCount"] == 8


@db
async def test_filters_combine_and_paginate(client: AsyncClient, log: list[Decision]) -> None:
    backend = (await data(client, DECISIONS, {"category": "Backend", "first": 2}))["decisions"]
    accepted = (await data(client, DECISIONS, {"status": "ACCEPTED"}))["decisions"]
    cached = (await data(client, DECISIONS, {"search": "CACHE"}))["decisions"]
    both = (await data(client, DECISIONS, {"search": "cache", "category": "infra"}))["decisions"]
    rest = await data(client, DECISIONS, {"category": "Backend", "after": backend["pageInfo"]["endCursor"]})

    assert (numbers(backend), backend["totalCount"], backend["pageInfo"]["hasNextPage"]) == ([1, 2], 5, True)
    assert numbers(rest["decisions"]) == [3, 4, 5]
    assert [edge["node"]["status"] for edge in accepted["edges"]] == ["ACCEPTED", "ACCEPTED"]
    assert numbers(accepted) == [2, 4]
    assert numbers(cached) == [3, 6]
    assert numbers(both) == [6]
    assert both["edges"][0]["node"]["category"] == "Infra"


@db
async def test_first_zero_counts_without_records_and_an_empty_log_has_no_cursors(client: AsyncClient) -> None:
    empty = (await data(client, DECISIONS))["decisions"]
    await sync_to_async(make_log)()
    counted = (await data(client, DECISIONS, {"first": 0}))["decisions"]

    assert empty == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
        "edges": [],
    }
    assert (counted["totalCount"], counted["edges"], counted["pageInfo"]["hasNextPage"]) == (7, [], True)


@db
async def test_one_record_by_number(client: AsyncClient, log: list[Decision]) -> None:
    record = (await data(client, DECISION, {"number": 2}))["decision"]
    missing = (await data(client, DECISION, {"number": 99}))["decision"]
    negative = (await data(client, DECISION, {"number": -1}))["decision"]

    expected = await sync_to_async(decisions.get)(2)
    assert record["number"] == 2
    assert record["title"] == "Decision 2"
    assert record["status"] == "ACCEPTED"
    assert record["date"] == expected.date.isoformat()
    assert record["markdown"] == decisions.to_markdown(expected)
    assert (record["supersededByNumber"], record["supersededBy"]) == (None, None)
    assert missing is None
    assert negative is None


@db
async def test_category_counts_list_every_category(client: AsyncClient, log: list[Decision]) -> None:
    counts = (await data(client, CATEGORY_COUNTS))["categoryCounts"]

    assert [entry["category"] for entry in counts] == list(CATEGORIES)
    assert {entry["category"]: entry["count"] for entry in counts if entry["count"]} == {
        "Backend": 5,
        "Infra": 1,
        "Security": 1,
    }


# --- mutations -------------------------------------------------------------------------------


@db
async def test_propose_returns_the_new_record(client: AsyncClient) -> None:
    result = await data(client, PROPOSE, {"input": {**PROPOSAL, "category": "real-time", "date": "2026-11-26"}})

    payload = result["proposeDecision"]
    assert payload["errors"] == []
    assert payload["decision"]["number"] == 1
    assert payload["decision"]["status"] == "PROPOSED"
    assert payload["decision"]["category"] == "Real-Time"
    assert payload["decision"]["date"] == "2026-11-26"
    assert (await sync_to_async(decisions.get)(1)).title == PROPOSAL["title"]


@db
async def test_propose_returns_typed_errors_for_every_bad_field(client: AsyncClient) -> None:
    bad = {**PROPOSAL, "title": "  ", "category": "Mainframe", "context": "x" * 20_001}

    payload = (await data(client, PROPOSE, {"input": bad}))["proposeDecision"]

    assert payload["decision"] is None
    assert [(error["field"], error["code"]) for error in payload["errors"]] == [
        ("title", "REQUIRED"),
        ("category", "INVALID_CATEGORY"),
        ("context", "TOO_LONG"),
    ]
    assert all(error["message"] for error in payload["errors"])
    assert not await Decision.objects.aexists()


@db
async def test_edit_changes_the_given_fields(client: AsyncClient, log: list[Decision]) -> None:
    payload = await data(client, EDIT, {"number": 2, "input": {"title": "Renamed", "category": "Data"}})

    edited = payload["editDecision"]
    assert edited["errors"] == []
    assert (edited["decision"]["title"], edited["decision"]["category"]) == ("Renamed", "Data")
    assert edited["decision"]["context"] == "Plain context."


@pytest.mark.parametrize(
    ("number", "changes", "expected"),
    [
        (7, {"title": "Too late"}, [("number", "NOT_EDITABLE")]),
        (99, {"title": "Nobody"}, [("number", "NOT_FOUND")]),
        (1, {"title": "a\nb", "consequences": ""}, [("title", "INVALID"), ("consequences", "REQUIRED")]),
    ],
)
@db
async def test_edit_refusals_are_typed(
    client: AsyncClient, log: list[Decision], number: int, changes: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    payload = (await data(client, EDIT, {"number": number, "input": changes}))["editDecision"]

    assert payload["decision"] is None
    assert [(error["field"], error["code"]) for error in payload["errors"]] == expected


@db
async def test_accept_and_deprecate(client: AsyncClient, log: list[Decision]) -> None:
    accepted = (await data(client, ACCEPT, {"number": 1}))["acceptDecision"]
    again = (await data(client, ACCEPT, {"number": 1}))["acceptDecision"]
    deprecated = (await data(client, DEPRECATE, {"number": 1}))["deprecateDecision"]
    twice = (await data(client, DEPRECATE, {"number": 1}))["deprecateDecision"]
    missing = (await data(client, ACCEPT, {"number": 0}))["acceptDecision"]

    assert (accepted["decision"]["status"], accepted["errors"]) == ("ACCEPTED", [])
    assert (again["decision"], [e["code"] for e in again["errors"]]) == (None, ["INVALID_STATUS_TRANSITION"])
    assert (deprecated["decision"]["status"], deprecated["errors"]) == ("DEPRECATED", [])
    assert [(e["field"], e["code"]) for e in twice["errors"]] == [("number", "INVALID_STATUS_TRANSITION")]
    assert [(e["field"], e["code"]) for e in missing["errors"]] == [("number", "NOT_FOUND")]


@db
async def test_supersede_links_the_records(client: AsyncClient, log: list[Decision]) -> None:
    payload = (await data(client, SUPERSEDE, {"number": 2, "by": 4}))["supersedeDecision"]
    old = (await data(client, DECISION, {"number": 2}))["decision"]

    assert payload["errors"] == []
    assert payload["decision"]["status"] == "SUPERSEDED"
    assert old["supersededByNumber"] == 4
    assert old["supersededBy"] == {"number": 4, "title": "Decision 4", "status": "ACCEPTED"}
    assert "· Superseded by ADR 4\n" in old["markdown"]


@pytest.mark.parametrize(
    ("number", "by", "expected"),
    [
        (2, 2, ("by", "SELF_SUPERSEDE")),
        (2, 99, ("by", "NOT_FOUND")),
        (99, 2, ("number", "NOT_FOUND")),
        (1, 2, ("number", "INVALID_STATUS_TRANSITION")),
        (2, 7, ("by", "INVALID_SUCCESSOR")),
    ],
)
@db
async def test_supersede_refusals_are_typed(
    client: AsyncClient, log: list[Decision], number: int, by: int, expected: tuple[str, str]
) -> None:
    payload = (await data(client, SUPERSEDE, {"number": number, "by": by}))["supersedeDecision"]

    assert payload["decision"] is None
    assert [(error["field"], error["code"]) for error in payload["errors"]] == [expected]


# --- query refusals: a GraphQL error saying what was wrong, never a 500 ------------------------


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("variables", "field", "reason"),
    [
        ({"after": "not a cursor"}, "after", "INVALID_CURSOR"),
        ({"after": ""}, "after", "INVALID_CURSOR"),
        ({"after": "é"}, "after", "INVALID_CURSOR"),
        ({"after": cursor_of("decision:x")}, "after", "INVALID_CURSOR"),
        ({"after": cursor_of("session:3")}, "after", "INVALID_CURSOR"),
        ({"after": cursor_of("decision:" + "9" * 30)}, "after", "INVALID_CURSOR"),
        ({"after": "A" * 10_000}, "after", "INVALID_CURSOR"),
        ({"first": 101}, "first", "OUT_OF_RANGE"),
        ({"first": -1}, "first", "OUT_OF_RANGE"),
        ({"category": "Mainframe"}, "category", "INVALID_CATEGORY"),
        ({"search": "x" * 201}, "search", "TOO_LONG"),
    ],
)
@db
async def test_bad_query_arguments_are_clear_client_errors(
    client: AsyncClient,
    log: list[Decision],
    caplog: pytest.LogCaptureFixture,
    variables: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    error = the_error(await post(client, DECISIONS, variables))

    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field, "reason": reason}
    assert error["message"]
    assert error["path"] == ["decisions"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("number", [0, 1, 2**31 - 1])
def test_cursors_we_issue_decode_to_their_number(number: int) -> None:
    assert decode_cursor(encode_cursor(number)) == number


@pytest.mark.parametrize(
    "request_body",
    [
        {"query": "{ decisions { edges { node { number } }"},  # syntax error
        {"query": "{ nothing }"},  # unknown field
        {"query": "{ decision(number: 99999999999) { number } }"},  # Int overflow
        {"query": "{ decision { number } }"},  # missing argument
        {"query": DECISIONS, "variables": {"first": "ten"}},  # wrong variable type
        {"query": DECISIONS, "variables": {"status": "REJECTED"}},  # not an enum value
        {"query": DECISION, "variables": {}},  # missing required variable
        {"query": PROPOSE, "variables": {"input": {**PROPOSAL, "date": "yesterday"}}},  # bad Date
        {"query": PROPOSE, "variables": {"input": {"title": "only a title"}}},  # incomplete input
    ],
)
@db
async def test_invalid_graphql_is_answered_with_errors_not_500(
    client: AsyncClient, caplog: pytest.LogCaptureFixture, request_body: dict[str, Any]
) -> None:
    response = await client.post(URL, request_body, content_type="application/json")

    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["errors"]
    assert body.get("data") is None
    assert all(error["message"] != "Internal server error." for error in body["errors"])
    assert not await Decision.objects.aexists()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        (b"[]", "application/json", 400),  # batching is off
        (b'{"query": 5}', "application/json", 400),
        (b'{"query": "{ categoryCounts { count } }", "variables": [1]}', "application/json", 400),
        (b'{"variables": {}}', "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        # What a cross-site form could send: refused, so CSRF exemption opens nothing.
        (b"query=mutation{acceptDecision(number:1){errors{code}}}", "application/x-www-form-urlencoded", 400),
        (b'{"query": "mutation { acceptDecision(number: 1) { errors { code } } }"}', "text/plain", 400),
    ],
)
@db
async def test_malformed_requests_get_4xx(
    client: AsyncClient, log: list[Decision], body: bytes, content_type: str, status: int
) -> None:
    response = await client.post(URL, body, content_type=content_type)

    assert response.status_code == status
    assert (await sync_to_async(decisions.get)(1)).status == Decision.Status.PROPOSED


@db
async def test_get_runs_queries_but_never_mutations(client: AsyncClient, log: list[Decision]) -> None:
    query = await client.get(URL, {"query": "{ decision(number: 1) { title } }"})
    mutation = await client.get(URL, {"query": "mutation { acceptDecision(number: 1) { errors { code } } }"})

    assert query.status_code == 200
    assert json.loads(query.content) == {"data": {"decision": {"title": "Decision 1"}}}
    assert mutation.status_code == 400
    assert b"not allowed when using GET" in mutation.content
    assert (await sync_to_async(decisions.get)(1)).status == Decision.Status.PROPOSED


# --- GraphiQL, CSRF ----------------------------------------------------------------------------


@pytest.mark.parametrize(("graphiql", "status"), [(True, 200), (False, 400)])
async def test_graphiql_only_when_on(client: AsyncClient, settings: Settings, graphiql: bool, status: int) -> None:
    settings.GRAPHQL_GRAPHIQL = graphiql

    response = await client.get(URL, headers={"Accept": "text/html"})

    assert response.status_code == status
    assert (b"graphiql" in response.content.lower()) is graphiql


async def test_graphiql_s_page_loads_its_files_from_the_node(client: AsyncClient, settings: Settings) -> None:
    settings.GRAPHQL_GRAPHIQL = True

    page = (await client.get(URL, headers={"Accept": "text/html"})).content.decode()

    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert "/static/graphiql/graphiql/graphiql.min.js" in links
    assert all(link.startswith("/static/") for link in links), links


@db
async def test_post_needs_no_cookie_or_csrf_token(client: AsyncClient) -> None:
    response = await client.post(
        URL, {"query": PROPOSE, "variables": {"input": PROPOSAL}}, content_type="application/json"
    )

    assert response.status_code == 200
    assert json.loads(response.content)["data"]["proposeDecision"]["errors"] == []
    assert "csrftoken" not in response.cookies
    assert "sessionid" not in response.cookies


# --- what a resolver bug looks like ------------------------------------------------------------------


@strawberry.type
class BrokenQuery:
    @strawberry.field
    def broken(self) -> int:
        raise RuntimeError("secret internals")


async def test_an_unexpected_resolver_error_is_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    schema = Schema(query=BrokenQuery, extensions=[MaskServerErrors])

    result = await schema.execute("{ broken }")

    assert result.errors is not None
    assert [(e.message, e.extensions) for e in result.errors] == [
        ("Internal server error.", {"code": "INTERNAL_SERVER_ERROR"})
    ]
    logged = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "secret internals" in str(logged[0].exc_info[1])
