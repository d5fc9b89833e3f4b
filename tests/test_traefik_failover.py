"""Nodes dying and restarting behind the real Traefik, with official SDK clients on the other side.

The clients are handshake-era `SessionClient`s (tests/traefik_cluster.py):
they would send initialize again if their session answered 404, as the spec
asks. With adoption (sessions_app/session/adoption.py) they never have to:
each test checks they initialized exactly once. The nodes host the echo
server, which declares its sessions adoptable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import anyio
import httpx2 as httpx
import pytest

from deploy.cluster import Cluster
from tests.traefik_cluster import (
    SessionClient,
    redis_client,
    routed,
    session_keys,
    session_records,
    start_test_cluster,
    wait_for,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_test_cluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


def wait_until_routed_to(cluster: Cluster, node: str) -> None:
    """Traefik counts the node healthy again in both services."""
    wait_for(lambda: node in cluster.servers_up("mcp") and node in cluster.servers_up("app"), f"Traefik to use {node}")


def restart(cluster: Cluster, node: str) -> None:
    cluster.start_node(node)
    wait_until_routed_to(cluster, node)


async def test_killing_the_owner_costs_at_most_the_request_in_flight(cluster: Cluster) -> None:
    store = redis_client(cluster)
    async with SessionClient(cluster, "kill") as client:
        for number in range(5):
            await client.echo(f"before {number}")
        owner = routed(cluster, "kill")[-1].node
        session_id = client.session_ids[0]
        wait_for(lambda: store.exists(f"mcp:session:{session_id}"), "the session's record")
        seen_before_kill = len(client.statuses)

        await anyio.to_thread.run_sync(cluster.kill_node, owner)
        answers = [await client.echo(f"after {number}") for number in range(10)]
        # The session's id still names the dead node: its router fails over to
        # the pool, where the node it reached adopted it (or relayed to the one that did).
        adopters = {
            line.rpartition(" on node ")[2].strip() for name in cluster.node_names for line in _adoptions(cluster, name)
        }
        record = next(record for record in session_records(cluster) if record["session_id"] == session_id)
        # The record is the adopter's now: the dead node's heartbeat expires and the reaper leaves it alone.
        await anyio.to_thread.run_sync(
            lambda: wait_for(lambda: not store.exists(f"mcp:node:{owner}"), "the dead node's heartbeat to expire")
        )
        await anyio.sleep(1.0)  # a few reaper passes
        kept = store.exists(f"mcp:session:{session_id}")

    assert answers == [f"after {number}" for number in range(10)]
    # The same session carried on: no 404, no second initialize.
    assert client.initializations == 1
    assert client.session_ids == [session_id]
    posts = [status for method, status in client.statuses[seen_before_kill:] if method == "POST"]
    # At most one failure: a 502 when Traefik wrote the first call on a pooled
    # connection to the node just as it died (not replayed, see deploy.md).
    assert posts[posts[0] == 502 :] == [200] * (len(posts) - (posts[0] == 502)), posts
    assert len(adopters) == 1
    adopter = adopters.pop()
    assert adopter != owner
    assert (record["node_id"], record["adopted_from"]) == (adopter, owner)
    assert kept
    await anyio.to_thread.run_sync(restart, cluster, owner)


async def test_graphql_requests_a_killed_node_never_got_go_to_another(cluster: Cluster) -> None:
    """The default router's app-retry: a query sent to a node that is gone is replayed on a live one.

    Nine queries go out at once right after the kill, on connections opened
    beforehand, before Traefik's health checks have noticed: round robin hands
    the dead node some of them (without app-retry, one of them was a 502 in
    each of eight runs; the passive check takes the node out after it).
    Traefik's access log does not count these replays (its RetryAttempts stays
    0), so the answers are the evidence.
    """
    victim = cluster.node_names[0]
    async with httpx.AsyncClient(verify=cluster.ssl_context(), timeout=10.0) as client:
        await _graphql_queries(client, cluster, "warm")  # opens the nine connections
        await anyio.to_thread.run_sync(cluster.kill_node, victim)
        answers = await _graphql_queries(client, cluster, "after-kill")
    assert [answer.status_code for answer in answers] == [200] * len(answers), [answer.text for answer in answers]
    assert all("errors" not in answer.json() for answer in answers)
    await anyio.to_thread.run_sync(restart, cluster, victim)


async def _graphql_queries(client: httpx.AsyncClient, cluster: Cluster, tag: str) -> list[httpx.Response]:
    query = {"query": "{ categoryCounts { category count } }"}
    requests = (client.post(f"{cluster.url}/graphql?c={tag}{number}", json=query) for number in range(9))
    return list(await asyncio.gather(*requests))


def _adoptions(cluster: Cluster, node: str) -> list[str]:
    return [line for line in cluster.node_log(node).splitlines() if "Adopted MCP session" in line]


async def test_rolling_restart_under_30_clients(cluster: Cluster) -> None:
    clients = [SessionClient(cluster, f"roll{number}") for number in range(30)]
    successes: list[list[float]] = [[] for _ in clients]
    every_client_answered, stop = anyio.Event(), anyio.Event()

    async def keep_calling(number: int, client: SessionClient) -> None:
        async with client:
            call = 0
            while not stop.is_set():
                text = f"client {number} call {call}"
                assert await client.echo(text, attempts=30) == text
                successes[number].append(time.monotonic())
                if all(successes):
                    every_client_answered.set()
                call += 1
                await anyio.sleep(0.2)

    def rolling_restart() -> float:
        for node in cluster.node_names:
            assert cluster.stop_node(node) == 0  # SIGTERM: handed off and exited cleanly
            assert "Handed off" in cluster.node_log(node)
            restart(cluster, node)
        return time.monotonic()

    async with anyio.create_task_group() as group:
        for number, client in enumerate(clients):
            group.start_soon(keep_calling, number, client)
        with anyio.fail_after(30):
            await every_client_answered.wait()
        done = await anyio.to_thread.run_sync(rolling_restart)
        await anyio.sleep(2.0)
        stop.set()

    # Every client came through all three restarts on the session it started with.
    assert all(any(moment > done for moment in times) for times in successes)
    assert [client.initializations for client in clients] == [1] * len(clients)
    statuses = [status for client in clients for _, status in client.statuses]
    assert 404 not in statuses
    failed = [status for status in statuses if status >= 500]
    print(f"rolling restart: {len(statuses)} answers, {len(failed)} failed: {sorted(set(failed))}")
    assert set(failed) <= {502, 503}, failed  # never a 500
    # The clients closed their sessions at the end: nothing is left behind.
    wait_for(lambda: session_keys(cluster) == [], "every session record to go")
