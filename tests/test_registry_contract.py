"""One contract, every registry backend: the in-process one and Redis (a private redis-server)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from sessions_app.cluster.registry import RegistryUnavailable, SessionRecord, SessionRegistry
from sessions_app.cluster.registry.locmem import LocMemSessionRegistry
from sessions_app.cluster.registry.redis import RedisSessionRegistry
from tests.redis_server import RedisServer, redis_cache


@pytest.fixture(params=["locmem", "redis"])
def registry(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[SessionRegistry]:
    if request.param == "locmem":
        yield LocMemSessionRegistry(session_ttl=60.0, node_ttl=2.0)
        return
    redis_server.client().flushdb()
    with override_settings(CACHES=redis_cache(redis_server.url)):
        yield RedisSessionRegistry(cache_alias="mcp_registry", session_ttl=60.0, node_ttl=2.0)


def record(session_id: str = "s1", node_id: str = "n1", boot_id: str = "b1") -> SessionRecord:
    return SessionRecord(
        session_id=session_id,
        node_id=node_id,
        boot_id=boot_id,
        channel_name="mcp-session.abc!def",
        created_at=1_700_000_000.0,
        protocol_version="2025-11-25",
        client_name="tester",
        client_version="1.0",
    )


def test_added_record_reads_back_whole(registry: SessionRegistry) -> None:
    registry.add(record())
    assert registry.get("s1") == record()


def test_continuation_state_reads_back_whole(registry: SessionRegistry) -> None:
    full = dataclasses.replace(
        record(),
        client_info={"name": "tester", "version": "1.0"},
        client_capabilities={"roots": {"listChanged": True}, "sampling": {}},
        log_level="debug",
        subscriptions=("adr://decisions/1", "adr://decisions/2"),
        adoptable=False,
        adopted_from="n0",
    )
    registry.add(full)
    assert registry.get("s1") == full


def test_a_claim_takes_the_record_only_from_the_owner_it_names(registry: SessionRegistry) -> None:
    registry.add(record(node_id="dead", boot_id="b0"))
    adopted = record(node_id="n2", boot_id="b2").owned_by("n2", "b2")

    assert not registry.claim(adopted, "someone-else", "b0")
    assert not registry.claim(adopted, "dead", "another-boot")
    assert registry.get("s1") == record(node_id="dead", boot_id="b0")
    assert registry.claim(adopted, "dead", "b0")
    assert registry.get("s1") == adopted
    # The record names its new owner now: a second claim from the dead one fails.
    assert not registry.claim(record(node_id="n3", boot_id="b3"), "dead", "b0")


def test_a_claim_of_a_missing_record_fails(registry: SessionRegistry) -> None:
    assert not registry.claim(record(), "n1", "b1")
    assert registry.get("s1") is None


def test_of_many_concurrent_claims_exactly_one_wins(registry: SessionRegistry) -> None:
    registry.add(record(node_id="dead", boot_id="b0"))
    claimants = [record(node_id=f"n{number}", boot_id=f"b{number}") for number in range(8)]

    with concurrent.futures.ThreadPoolExecutor(len(claimants)) as pool:
        results = list(pool.map(lambda claimant: registry.claim(claimant, "dead", "b0"), claimants))

    assert results.count(True) == 1
    winner = claimants[results.index(True)]
    assert registry.get("s1") == winner


def test_missing_record_is_none(registry: SessionRegistry) -> None:
    assert registry.get("never") is None


def test_remove_deletes_and_is_idempotent(registry: SessionRegistry) -> None:
    registry.add(record())
    registry.remove("s1")
    registry.remove("s1")
    assert registry.get("s1") is None


def test_records_list_every_session_with_its_ttl(registry: SessionRegistry) -> None:
    registry.add(record("s1"))
    registry.add(record("s2", node_id="n2"))

    listed = {item.record.session_id: item for item in registry.records()}

    assert set(listed) == {"s1", "s2"}
    assert listed["s2"].record.node_id == "n2"
    assert all(item.ttl is not None and 50 < item.ttl <= 60 for item in listed.values())


def test_heartbeat_makes_a_node_live_until_its_ttl(registry: SessionRegistry) -> None:
    assert registry.heartbeat("n1", "b1") is False  # first beat: nothing was there
    assert registry.heartbeat("n1", "b1") is True
    assert registry.live_nodes() == {"n1": "b1"}
    assert registry.node_boot_id("n1") == "b1"
    assert registry.node_boot_id("n2") is None

    time.sleep(2.2)

    assert registry.live_nodes() == {}
    assert registry.heartbeat("n1", "b1") is False  # expired in between: as good as lost


def test_a_new_life_replaces_the_old_heartbeat(registry: SessionRegistry) -> None:
    registry.heartbeat("n1", "old")
    assert registry.heartbeat("n1", "new") is False
    assert registry.live_nodes() == {"n1": "new"}


def test_forget_node_only_forgets_its_own_life(registry: SessionRegistry) -> None:
    registry.heartbeat("n1", "new")
    registry.forget_node("n1", "old")
    assert registry.live_nodes() == {"n1": "new"}
    registry.forget_node("n1", "new")
    assert registry.live_nodes() == {}


async def test_async_twins_agree_with_the_sync_methods(registry: SessionRegistry) -> None:
    await registry.aadd(record())
    assert await registry.aget("s1") == record()
    assert [item.record for item in await registry.arecords()] == [record()]
    await registry.aremove("s1")
    assert await registry.aget("s1") is None


def test_redis_keys_are_exactly_the_documented_ones(redis_server: RedisServer) -> None:
    store = redis_server.client()
    store.flushdb()
    with override_settings(CACHES=redis_cache(redis_server.url)):
        registry = RedisSessionRegistry(cache_alias="mcp_registry", session_ttl=2_592_000.0, node_ttl=10.0)
        registry.add(record("abc"))
        registry.heartbeat("n1", "b1")

    assert sorted(store.keys("*")) == ["mcp:node:n1", "mcp:session:abc"]
    assert 2_591_990 < store.ttl("mcp:session:abc") <= 2_592_000


def test_unreachable_redis_raises_registry_unavailable(tmp_path: Any) -> None:
    dead = RedisServer(tmp_path)  # never started: nothing listens on its port
    with override_settings(CACHES=redis_cache(dead.url)):
        registry = RedisSessionRegistry(cache_alias="mcp_registry", session_ttl=60.0, node_ttl=2.0)
        for call in (lambda: registry.add(record()), lambda: registry.get("s1"), registry.records, registry.live_nodes):
            with pytest.raises(RegistryUnavailable):
                call()
