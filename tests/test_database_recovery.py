"""MCP tools survive a database that drops their connection (a PostgreSQL restart).

A consumer gets no request signals, so Django never closes a dead connection
for it; the MCP handlers must (channels' database_sync_to_async does). Needs
the PostgreSQL that machines of this kind run on 127.0.0.1:5432; the test makes
and drops a database of its own there.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from mcp import Client
from mcp.types import TextContent

from tests.nodes import Node, manage

SERVER = "postgres://postgres@127.0.0.1:5432"


@pytest.fixture(scope="module")
def postgres_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, str]]:
    name = f"mcp_recovery_{secrets.token_hex(4)}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {"DATABASE_URL": f"{SERVER}/{name}", "MCP_SERVER": "graphql_app.mcp.server.server"}
    workdir: Path = tmp_path_factory.mktemp("recovery")
    try:
        manage(env, "migrate", "--noinput")
        manage(env, "load_demo_decisions")
        node = Node(env=env, log_path=workdir / "node.log").start()
        yield node, name
        node.stop()
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_connections(database: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


async def test_tools_work_again_after_the_database_dropped_the_connection(postgres_node: tuple[Node, str]) -> None:
    node, database = postgres_node
    async with Client(node.mcp_url, mode="legacy") as client:
        before = await client.call_tool("search_decisions", {"text": "session"})
        assert not before.is_error

        # Whatever connection the node still holds dies under it. (Done right,
        # it holds none between calls: CONN_MAX_AGE is 0.)
        drop_connections(database)

        after = await client.call_tool("search_decisions", {"text": "session"})
        assert not after.is_error, after.content
        first = after.content[0]
        assert isinstance(first, TextContent)
        assert "ADR" in first.text
