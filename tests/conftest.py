from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx2 as httpx
import pytest

from tests.nodes import Node
from tests.redis_server import RedisServer

StartNode = Callable[..., Node]


@pytest.fixture(scope="session")
def node_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartNode]:
    """Start daphne nodes with the given MCP_* environment; one per distinct environment, shared."""
    started: dict[tuple[tuple[str, str], ...], Node] = {}

    def start(**env: str) -> Node:
        key = tuple(sorted(env.items()))
        if key not in started:
            log = tmp_path_factory.mktemp("node") / "daphne.log"
            started[key] = Node(env=env, log_path=log).start()
        return started[key]

    yield start
    for node in started.values():
        node.stop()


@pytest.fixture(scope="session")
def node(node_factory: StartNode) -> Node:
    """A node hosting the project's default MCP server."""
    return node_factory()


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    """A plain HTTP client for talking to nodes: no cookies kept between tests, a 10-second timeout.

    (Not named `client`: that is pytest-django's Django test client.)
    """
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for one test module."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
