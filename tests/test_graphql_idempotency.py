"""Mutations sent with an Idempotency-Key run once per caller and key; a retry gets the first answer."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

import pytest
from django.test import AsyncClient
from django.utils import timezone
from pytest_django import Settings

from graphql_app.models import Decision, IdempotentRequest
from tests.token_issuer import Issuer

URL = "/graphql"
RESOURCE = "http://127.0.0.1/mcp"
db = pytest.mark.django_db(transaction=True)

PROPOSE = """
mutation Propose($input: ProposeDecisionInput!) {
  proposeDecision(input: $input) { decision { number title } errors { code } }
}
"""


def proposal(title: str = "Retry safely") -> dict[str, Any]:
    text = "Some text."
    return {
        "query": PROPOSE,
        "variables": {
            "input": {"title": title, "category": "Backend", "context": text, "decision": text, "consequences": text}
        },
    }


async def send(body: dict[str, Any], key: str | None, **extra: str) -> Any:
    headers = {**extra} if key is None else {"Idempotency-Key": key, **extra}
    return await AsyncClient().post(URL, json.dumps(body), content_type="application/json", headers=headers)


@db
async def test_the_same_mutation_sent_twice_with_a_key_runs_once() -> None:
    first = await send(proposal(), "key-1")
    second = await send(proposal(), "key-1")

    assert first.status_code == second.status_code == 200
    assert json.loads(first.content)["data"]["proposeDecision"]["decision"]["number"] == 1
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert await Decision.objects.acount() == 1


@db
async def test_without_a_key_or_with_another_key_it_runs_again() -> None:
    await send(proposal(), None)
    await send(proposal(), None)
    await send(proposal(), "key-a")
    await send(proposal(), "key-b")

    assert await Decision.objects.acount() == 4


@db
async def test_the_same_key_with_another_body_is_refused() -> None:
    await send(proposal("First"), "key-1")
    response = await send(proposal("Second"), "key-1")

    assert response.status_code == 422
    assert json.loads(response.content)["errors"][0]["extensions"] == {"code": "IDEMPOTENCY_KEY_REUSED"}
    assert [title async for title in Decision.objects.values_list("title", flat=True)] == ["First"]


@db
async def test_a_key_still_running_answers_409() -> None:
    # What a second node sees while the first one runs the request: a claim without an answer.
    await IdempotentRequest.objects.acreate(
        caller="anyone",
        key="key-1",
        request_hash=hashlib.sha256(json.dumps(proposal()).encode()).hexdigest(),
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )

    response = await send(proposal(), "key-1")

    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert json.loads(response.content)["errors"][0]["extensions"] == {"code": "IDEMPOTENCY_KEY_IN_USE"}
    assert not await Decision.objects.aexists()


@db
async def test_keys_belong_to_their_caller(settings: Settings) -> None:
    # Two users, with real tokens: one user's key is theirs alone.
    issuer = Issuer()
    try:
        settings.MCP_AUTH, settings.MCP_AUTH_ISSUER, settings.MCP_RESOURCE_URI = "jwt", issuer.url, RESOURCE
        alice = issuer.token(RESOURCE, sub="alice", scope="mcp:read mcp:write")
        bob = issuer.token(RESOURCE, sub="bob", scope="mcp:read mcp:write")
        first = await send(proposal(), "shared", Authorization=f"Bearer {alice}")
        second = await send(proposal(), "shared", Authorization=f"Bearer {bob}")
        replayed = await send(proposal(), "shared", Authorization=f"Bearer {alice}")
    finally:
        issuer.stop()

    assert first.status_code == second.status_code == 200
    assert "Idempotent-Replayed" not in second
    assert replayed["Idempotent-Replayed"] == "true"
    assert await Decision.objects.acount() == 2


@db
async def test_keys_expire(settings: Settings) -> None:
    settings.GRAPHQL_IDEMPOTENCY_TTL = 0
    await send(proposal(), "key-1")
    again = await send(proposal(), "key-1")

    assert "Idempotent-Replayed" not in again
    assert await Decision.objects.acount() == 2


@db
async def test_an_answer_that_is_not_200_is_not_kept() -> None:
    bad = await AsyncClient().post(URL, b"{not json", content_type="application/json", headers={"Idempotency-Key": "k"})
    assert bad.status_code == 400

    assert not await IdempotentRequest.objects.aexists()


@pytest.mark.parametrize("key", ["", "x" * 201, "caf\u00e9"])
@db
async def test_a_bad_key_is_refused(key: str) -> None:
    response = await send(proposal(), key)

    assert response.status_code == 400
    assert json.loads(response.content)["errors"][0]["extensions"] == {"code": "BAD_IDEMPOTENCY_KEY"}
    assert not await Decision.objects.aexists()
