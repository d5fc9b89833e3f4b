"""`manage.py mcp_sessions list|close|reap`, through call_command and this process's registry."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django import Settings

from sessions_app.cluster.registry import SessionRegistry
from sessions_app.cluster.routing import short_id
from tests.session_records import fresh_registry, record, unreachable_registry


@pytest.fixture
def registry(settings: Settings) -> SessionRegistry:
    return fresh_registry(settings)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("mcp_sessions", *args, stdout=out)
    return out.getvalue()


def test_list_prints_one_line_per_record(registry: SessionRegistry) -> None:
    live = record("node-a", "boot-a", age=3 * 60 + 12)
    dead = record("node-b", "boot-b", client_name="other", client_version="2.0")
    registry.add(live)
    registry.add(dead)
    registry.heartbeat("node-a", "boot-a")

    lines = run("list").splitlines()

    assert len(lines) == 2
    [live_line] = [line for line in lines if line.startswith(short_id(live.session_id))]
    [dead_line] = [line for line in lines if line.startswith(short_id(dead.session_id))]
    assert live_line.split("  ")[1:4] == ["node-a", "alive", "age 3m 12s"]
    assert "ttl 29d 23h" in live_line
    assert "client raw-test/1" in live_line
    assert live_line.endswith("protocol 2025-11-25")
    assert dead_line.split("  ")[1:3] == ["node-b", "dead"]
    assert "client other/2.0" in dead_line
    # Text output is for people and logs: no bearer secrets in it.
    assert live.session_id not in "\n".join(lines)


def test_list_filters_by_node(registry: SessionRegistry) -> None:
    on_a = record("node-a", "boot-a")
    on_b = record("node-b", "boot-b")
    registry.add(on_a)
    registry.add(on_b)

    lines = run("list", "--node", "node-b").splitlines()

    assert [line.split("  ")[0] for line in lines] == [short_id(on_b.session_id)]
    assert run("list", "--node", "node-z").strip() == "No MCP sessions on node node-z."


def test_list_of_an_empty_registry_says_so(registry: SessionRegistry) -> None:
    assert run("list").strip() == "No MCP sessions."


def test_list_json_gives_full_records_with_liveness(registry: SessionRegistry) -> None:
    live = record("node-a", "boot-a", principal="alice")
    restarted = record("node-a", "boot-before-restart")
    registry.add(live)
    registry.add(restarted)
    registry.heartbeat("node-a", "boot-a")

    listed = {item["session_id"]: item for item in json.loads(run("list", "--json"))}

    assert set(listed) == {live.session_id, restarted.session_id}
    item = listed[live.session_id]
    assert item["short_id"] == short_id(live.session_id)
    assert item["alive"] is True
    assert (item["node_id"], item["boot_id"], item["principal"]) == ("node-a", "boot-a", "alice")
    assert (item["client_name"], item["client_version"], item["protocol_version"]) == ("raw-test", "1", "2025-11-25")
    assert 4.0 < item["age_seconds"] < 60.0
    assert 29 * 86400 < item["ttl_seconds"] <= 30 * 86400
    assert listed[restarted.session_id]["alive"] is False
    assert json.loads(run("list", "--json", "--node", "node-b")) == []


def test_close_deletes_the_records_and_reports_which_were_found(registry: SessionRegistry) -> None:
    first = record("node-gone", "boot-gone")
    second = record("node-a", "boot-a")
    untouched = record("node-a", "boot-a")
    for session in (first, second, untouched):
        registry.add(session)
    unknown = "never-existed-session-id"

    lines = run("close", first.session_id, unknown, second.session_id).splitlines()

    assert lines == [
        f"closed {short_id(first.session_id)}",
        f"not found {short_id(unknown)}",
        f"closed {short_id(second.session_id)}",
    ]
    assert registry.get(first.session_id) is None
    assert registry.get(second.session_id) is None
    assert registry.get(untouched.session_id) == untouched


def test_close_needs_a_session_id() -> None:
    with pytest.raises(CommandError, match="SESSION_ID"):
        run("close")


def test_reap_deletes_the_records_of_nodes_that_are_not_alive(registry: SessionRegistry) -> None:
    live = record("node-a", "boot-a")
    of_dead_node = record("node-b", "boot-b")
    of_previous_life = record("node-a", "boot-before-restart")
    for session in (live, of_dead_node, of_previous_life):
        registry.add(session)
    registry.heartbeat("node-a", "boot-a")

    output = run("reap")

    assert output.strip() == "Reaped 2 session records of nodes that are not alive."
    assert [item.record for item in registry.records()] == [live]


def test_reap_with_grace_spares_a_node_that_comes_back_in_time(registry: SessionRegistry) -> None:
    stays_dead = record("node-b", "boot-b")
    comes_back = record("node-c", "boot-c")
    registry.add(stays_dead)
    registry.add(comes_back)
    # node-c misses the first look, and heartbeats again well within the grace.
    revival = threading.Timer(0.2, registry.heartbeat, ("node-c", "boot-c"))
    revival.start()

    started = time.monotonic()
    output = run("reap", "--grace", "1")
    revival.join()

    assert time.monotonic() - started >= 1.0
    assert output.splitlines()[-1] == "Reaped 1 session record of nodes that are not alive."
    assert [item.record for item in registry.records()] == [comes_back]


def test_reap_refuses_a_negative_grace() -> None:
    with pytest.raises(CommandError, match="must not be negative"):
        run("reap", "--grace", "-5")


@pytest.mark.parametrize("args", [("list",), ("list", "--json"), ("close", "some-session-id"), ("reap",)])
def test_an_unreachable_registry_is_a_clear_error(settings: Settings, args: tuple[str, ...]) -> None:
    unreachable_registry(settings)

    with pytest.raises(CommandError, match=r"^The session registry is unavailable: "):
        run(*args)


def test_closes_in_separate_commands_share_one_process(registry: SessionRegistry) -> None:
    """Each call runs on a new event loop; the process's registry writer must follow it."""
    first, second = record("node-a", "boot-a"), record("node-a", "boot-a")
    registry.add(first)
    registry.add(second)

    run("close", first.session_id)
    run("close", second.session_id)

    assert registry.get(first.session_id) is None
    assert registry.get(second.session_id) is None
