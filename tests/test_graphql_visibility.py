"""Introspection and "Did you mean ...?" hints follow GRAPHQL_INTROSPECTION (off unless debugging)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from django.test import AsyncClient
from pytest_django import Settings

from tests.nodes import REPO

URL = "/graphql"
db = pytest.mark.django_db(transaction=True)

INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE = '{ __type(name: "Decision") { fields { name } } }'
MISSPELLED_FIELD = "{ decisions { edgs { cursor } } }"
MISSPELLED_ENUM = "{ decisions(status: ACCEPTD) { totalCount } }"
MISSPELLED_VARIABLE = "query($s: DecisionStatus) { decisions(status: $s) { totalCount } }"


async def post(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await AsyncClient().post(URL, {"query": query, "variables": variables}, content_type="application/json")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = json.loads(response.content)
    return body


def messages(body: dict[str, Any]) -> list[str]:
    return [error["message"] for error in body.get("errors", [])]


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE])
async def test_introspection_is_refused_when_off(settings: Settings, query: str) -> None:
    settings.GRAPHQL_INTROSPECTION = False

    body = await post(query)

    assert body.get("data") is None
    assert messages(body)
    assert all("introspection has been disabled" in message for message in messages(body))


@db
async def test_typename_still_answers_when_introspection_is_off(settings: Settings) -> None:
    settings.GRAPHQL_INTROSPECTION = False

    assert await post("{ __typename }") == {"data": {"__typename": "Query"}}


async def test_introspection_answers_when_on(settings: Settings) -> None:
    settings.GRAPHQL_INTROSPECTION = True

    assert await post(INTROSPECTION) == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


@pytest.mark.parametrize(
    ("query", "variables", "hint"),
    [
        (MISSPELLED_FIELD, None, "'edges'"),
        (MISSPELLED_ENUM, None, "'ACCEPTED'"),
        (MISSPELLED_VARIABLE, {"s": "ACCEPTD"}, "'ACCEPTED'"),
        ("{ decisions(frist: 1) { totalCount } }", None, "'first'"),
    ],
)
@db
async def test_hints_follow_the_setting(
    settings: Settings, query: str, variables: dict[str, Any] | None, hint: str
) -> None:
    settings.GRAPHQL_INTROSPECTION = True
    shown = messages(await post(query, variables))
    settings.GRAPHQL_INTROSPECTION = False
    hidden = messages(await post(query, variables))

    assert any("Did you mean" in message and hint in message for message in shown), shown
    assert hidden
    assert not any("Did you mean" in message or hint in message for message in hidden), hidden
    # The rest of the message still says what is wrong.
    assert [message.partition(" Did you mean ")[0] for message in shown] == hidden


@pytest.mark.parametrize(("debug", "expected"), [("1", "True"), ("0", "False")])
def test_the_default_is_debug(debug: str, expected: str) -> None:
    # Settings are read at import: a fresh interpreter with only DJANGO_DEBUG set.
    code = "from django.conf import settings; print(settings.GRAPHQL_INTROSPECTION)"
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "DJANGO_DEBUG": debug, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == expected
