"""What one GraphQL operation may cost: every limit refuses with a clear error, and on a real
node an alias bomb is refused at once, without the node's memory growing or /healthz waiting."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from graphql import get_introspection_query
from pytest_django import Settings

from graphql_app import decisions
from graphql_app.api.limits import ValidDocuments
from tests.nodes import Node, manage

URL = "/graphql"
db = pytest.mark.django_db(transaction=True)

ROW_FIELDS = "number title context decision consequences markdown"


def aliased_pages(count: int, first: int = 100) -> str:
    """`count` aliases of one page of `first` full records: the shape of the attack."""
    pages = " ".join(f"p{i}: decisions(first: {first}) {{ edges {{ node {{ {ROW_FIELDS} }} }} }}" for i in range(count))
    return f"{{ {pages} }}"


def nested_successors(depth: int) -> str:
    query = "number"
    for _ in range(depth - 1):
        query = f"supersededBy {{ {query} }}"
    return f"{{ decision(number: 1) {{ {query} }} }}"


async def post(query: str) -> dict[str, Any]:
    response = await AsyncClient().post(URL, {"query": query}, content_type="application/json")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = json.loads(response.content)
    return body


def limit_refusal(body: dict[str, Any]) -> dict[str, Any]:
    """The one LIMIT_EXCEEDED error of a refused operation (no data at all)."""
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    extensions: dict[str, Any] = error["extensions"]
    return extensions


def propose(count: int, text: str = "Some text.") -> None:
    for number in range(count):
        decisions.propose(
            title=f"Decision {number}", category="Backend", context=text, decision=text, consequences=text
        )


# --- each limit ----------------------------------------------------------------------------------


@db
async def test_too_many_tokens_is_refused_before_parsing_the_rest(settings: Settings) -> None:
    settings.GRAPHQL_MAX_TOKENS = 50
    body = await post(aliased_pages(3))  # about 60 tokens

    assert limit_refusal(body) == {"code": "LIMIT_EXCEEDED", "reason": "TOO_MANY_TOKENS", "limit": 50}

    settings.GRAPHQL_MAX_TOKENS = 1000
    assert "errors" not in await post(aliased_pages(1, first=0))


@db
async def test_too_many_aliases_is_refused_before_anything_runs(settings: Settings) -> None:
    settings.GRAPHQL_MAX_ALIASES = 3
    query = "{ " + " ".join(f"c{i}: categoryCounts {{ count }}" for i in range(4)) + " }"

    body = await post(query)

    assert limit_refusal(body) == {"code": "LIMIT_EXCEEDED", "reason": "TOO_MANY_ALIASES", "limit": 3}
    assert "4 aliases" in body["errors"][0]["message"]
    settings.GRAPHQL_MAX_ALIASES = 4
    assert "errors" not in await post(query)


@db
async def test_too_deep_is_refused(settings: Settings) -> None:
    settings.GRAPHQL_MAX_DEPTH = 4

    assert limit_refusal(await post(nested_successors(5))) == {
        "code": "LIMIT_EXCEEDED",
        "reason": "TOO_DEEP",
        "limit": 4,
    }
    assert await post(nested_successors(4)) == {"data": {"decision": None}}


@db
async def test_an_invalid_document_gets_its_validation_error_not_a_limit(settings: Settings) -> None:
    settings.GRAPHQL_MAX_DEPTH = 1
    body = await post("{ ...Missing }")

    assert body["errors"][0]["message"] == "Unknown fragment 'Missing'."


# --- documents already found valid -----------------------------------------------------------


@db
async def test_a_document_once_valid_is_refused_when_a_limit_is_lowered(settings: Settings) -> None:
    settings.GRAPHQL_MAX_DEPTH = 5
    query = nested_successors(5)
    for _ in range(2):  # the second time, the node has it as valid
        assert await post(query) == {"data": {"decision": None}}

    settings.GRAPHQL_MAX_DEPTH = 4

    assert limit_refusal(await post(query))["reason"] == "TOO_DEEP"


@db
async def test_a_document_once_valid_is_refused_when_introspection_is_turned_off(settings: Settings) -> None:
    query = "{ __schema { queryType { name } } }"
    settings.GRAPHQL_INTROSPECTION = True
    for _ in range(2):
        assert "errors" not in await post(query)

    settings.GRAPHQL_INTROSPECTION = False

    body = await post(query)
    assert "introspection" in body["errors"][0]["message"].lower()


@db
async def test_an_invalid_document_is_refused_every_time() -> None:
    for _ in range(2):
        body = await post("{ ...Missing }")
        assert body["errors"][0]["message"] == "Unknown fragment 'Missing'."


def test_only_the_most_recently_used_valid_documents_are_kept() -> None:
    kept = ValidDocuments(size=2)
    first, second, third = (ValidDocuments.key(query) for query in ("{ a }", "{ b }", "{ c }"))
    kept.add(first)
    kept.add(second)
    assert first in kept  # used: now the most recent
    kept.add(third)

    assert first in kept
    assert third in kept
    assert second not in kept


@db
async def test_rows_past_the_budget_are_refused_without_loading_them(settings: Settings) -> None:
    await sync_to_async(propose)(5)
    settings.GRAPHQL_MAX_ROWS = 7
    query = "{ a: decisions(first: 3) { edges { node { number } } } b: decisions(first: 3) { totalCount } "
    query += "c: decisions(first: 3) { totalCount } }"

    body = await post(query)

    # Two pages of three fit in seven rows; the third is refused, and with it
    # the whole answer (`decisions` is non-null, so its error nulls `data`).
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["path"] == ["c"]
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "reason": "TOO_MANY_ROWS", "limit": 7}
    # The budget is the operation's: the next one starts afresh.
    assert "errors" not in await post("{ decisions(first: 7) { totalCount } }")


@db
async def test_a_response_over_the_byte_limit_is_replaced_by_one_error(settings: Settings) -> None:
    await sync_to_async(propose)(3, text="x" * 2000)
    query = "{ decisions(first: 3) { edges { node { context } } } }"
    settings.GRAPHQL_MAX_RESPONSE_BYTES = 5000

    body = await post(query)

    assert limit_refusal(body) == {"code": "LIMIT_EXCEEDED", "reason": "RESPONSE_TOO_LARGE", "limit": 5000}
    settings.GRAPHQL_MAX_RESPONSE_BYTES = 7000
    assert "errors" not in await post(query)


async def test_introspection_fits_the_default_limits(settings: Settings) -> None:
    # GraphiQL and schema tools introspect with a query about this deep and long.
    settings.GRAPHQL_INTROSPECTION = True
    body = await post(get_introspection_query(descriptions=True, input_value_deprecation=True))

    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


# --- on a real node -----------------------------------------------------------------------------

# Records about as large as the attacked cluster's: one full page of 100 is ~3.6 MB of JSON.
SECTION = "An architecture decision, written out at length. " * 120


@pytest.fixture(scope="module")
def seeded_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    folder = tmp_path_factory.mktemp("limits")
    env = {
        "DJANGO_SQLITE_PATH": str(folder / "db.sqlite3"),
        "DATABASE_URL": "",
        "MCP_SERVER": "graphql_app.mcp.server.server",
    }
    manage(env, "migrate", "--noinput")
    seed = (
        "from graphql_app import decisions\n"
        f"for n in range(100): decisions.propose(title=f'Decision {{n}}', category='Backend', "
        f"context={SECTION!r}, decision={SECTION!r}, consequences={SECTION!r})\n"
    )
    manage(env, "shell", "-c", seed)
    node = Node(env=env, log_path=folder / "daphne.log").start()
    yield node
    node.stop()


def rss_kib(node: Node) -> int:
    assert node.process is not None
    for line in Path(f"/proc/{node.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_alias_bombs_are_refused_at_once_and_the_node_stays_small_and_responsive(seeded_node: Node) -> None:
    url = f"{seeded_node.url}/graphql"
    with httpx.Client(timeout=30) as client:
        # Warm up: the first requests load code and fill caches.
        for _ in range(3):
            page = client.post(url, json={"query": aliased_pages(1)})
            assert len(page.json()["data"]["p0"]["edges"]) == 100
        before = rss_kib(seeded_node)

        health_waits: list[float] = []
        stop = threading.Event()

        def watch_health() -> None:
            with httpx.Client(timeout=30) as health:
                while not stop.is_set():
                    started = time.monotonic()
                    assert health.get(f"{seeded_node.url}/healthz").status_code == 200
                    health_waits.append(time.monotonic() - started)
                    time.sleep(0.02)

        watcher = threading.Thread(target=watch_health)
        watcher.start()
        try:
            timings = {}
            for count in (60, 5000, 60, 5000):
                query = aliased_pages(count)
                started = time.monotonic()
                response = client.post(url, json={"query": query})
                timings[count] = time.monotonic() - started
                assert response.status_code == 200
                assert limit_refusal(response.json())["reason"] == "TOO_MANY_TOKENS"
                assert len(response.content) < 1000
        finally:
            stop.set()
            watcher.join()
        after = rss_kib(seeded_node)

    print(f"refused in {timings}; RSS {before} KiB -> {after} KiB; slowest /healthz {max(health_waits):.3f} s")
    assert max(timings.values()) < 1.0
    assert after - before < 20 * 1024
    assert max(health_waits) < 0.5
