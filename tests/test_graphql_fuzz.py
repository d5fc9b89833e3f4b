"""Schemathesis fuzzes /graphql on a real daphne node: no generated query may get a server error.

The node has its own SQLite file, migrated and loaded with the demo log first,
so that queries find records and mutations have something to change. The
schema comes from the node by introspection; nothing leaves this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.nodes import Node, manage

# Generated cases per operation (3 queries, 5 mutations; categoryCounts has only a
# handful): about 400 requests, 10-20 s here with the node start.
CASES_PER_OPERATION = 60


@pytest.fixture(scope="module")
def graphql_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    folder = tmp_path_factory.mktemp("fuzz")
    # An empty DATABASE_URL counts as unset: the node uses this SQLite file even
    # when the suite itself runs against PostgreSQL.
    # Introspection on (production leaves it off): schemathesis reads the schema that way.
    env = {"DJANGO_SQLITE_PATH": str(folder / "db.sqlite3"), "DATABASE_URL": "", "GRAPHQL_INTROSPECTION": "1"}
    manage(env, "migrate", "--noinput")
    manage(env, "load_demo_decisions")
    node = Node(env=env, log_path=folder / "daphne.log").start()
    yield node
    node.stop()


def test_no_generated_request_gets_a_server_error(graphql_node: Node) -> None:
    # The schema as the node publishes it, by introspection. (Driven through
    # Hypothesis here: schemathesis's fixture-based pytest loader breaks on pytest 9.)
    schema = schemathesis.graphql.from_url(f"{graphql_node.url}/graphql", timeout=10)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) == 8  # 3 queries, 5 mutations

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=CASES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Case[APIOperation[Any, Any, Any, Any]]) -> None:
            # not_a_server_error fails on a 5xx status, and on a GraphQL error
            # that is not the client's (ours say "code": "INTERNAL_SERVER_ERROR").
            case.call_and_validate(checks=[not_a_server_error], timeout=10)

        fuzz()


def test_the_node_logged_no_server_error(graphql_node: Node) -> None:
    log = graphql_node.log()
    assert "GraphQL resolver failed" not in log
    assert "Internal Server Error" not in log
    assert "Traceback" not in log
