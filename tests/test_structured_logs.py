"""DJANGO_LOG_FORMAT=json: one JSON object per line, naming the node and the MCP request (real nodes)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from sessions_app.cluster.routing import session_hash
from sessions_app.http import log_context
from sessions_app.http.eras import Era
from tests.conftest import StartNode
from tests.mcp_http import (
    modern_headers,
    modern_meta,
    open_session,
    session_headers,
    sse_messages,
)
from tests.nodes import Node

NODE_ID = "json-logs"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
LISTING = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

Record = dict[str, Any]


@pytest.fixture(scope="module")
def json_node(node_factory: StartNode) -> Node:
    return node_factory(DJANGO_LOG_FORMAT="json", MCP_NODE_ID=NODE_ID, MCP_SERVER="tests.probe_server.server")


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def records(node: Node) -> list[Record]:
    """Every line of the node's output, each of which must be one JSON object."""
    parsed = []
    for number, line in enumerate(node.log().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} of the node's output is not JSON: {line!r}")
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


def wait_until_logged(node: Node, logged: Callable[[str], bool], timeout: float = 5.0) -> None:
    """Wait for the node's log to satisfy `logged`: a client can hold its answer before the node logs it,
    since daphne writes its access line after the answer has left."""
    deadline = time.monotonic() + timeout
    while not logged(node.log()):
        if time.monotonic() > deadline:
            pytest.fail(f"no such record in the node's log:\n{node.log()}")
        time.sleep(0.05)


def wait_for_record(node: Node, matches: Callable[[Record], bool]) -> Record:
    wait_until_logged(node, lambda _: any(matches(record) for record in records(node)))
    found = [record for record in records(node) if matches(record)]
    assert len(found) == 1, found
    return found[0]


def is_access(path: str) -> Callable[[Record], bool]:
    return lambda record: record["logger"] == "mcpsite.access" and record["http"]["path"] == path


def probe_log(text: str) -> Callable[[Record], bool]:
    return lambda record: record["logger"] == "tests.probe_server" and record["message"] == text


def log_tool_call(text: str, meta: dict[str, Any], request_id: int = 3, *, traceback: bool = False) -> dict[str, Any]:
    arguments = {"text": text, "traceback": traceback}
    params = {"name": "log", "arguments": arguments, "_meta": meta}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def call_in_session(client: httpx.Client, node: Node, session_id: str, body: dict[str, Any]) -> None:
    answer = client.post(node.mcp_url, json=body, headers=session_headers(session_id))
    assert answer.status_code == 200, answer.text
    assert [message["result"]["content"][0]["text"] for message in sse_messages(answer.text)] == ["logged"]


def call_stateless(client: httpx.Client, node: Node, body: dict[str, Any]) -> None:
    answer = client.post(node.mcp_url, json=body, headers=modern_headers("tools/call", name="log"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["content"][0]["text"] == "logged"


# --- every line -----------------------------------------------------------------------------


def test_every_line_is_one_json_object_with_time_level_logger_message_and_node(
    json_node: Node, client: httpx.Client
) -> None:
    # Given some traffic (an answer logged by daphne's access log among it)
    assert client.get(f"{json_node.url}/healthz").status_code == 200

    # Then every line parses, and carries the same five fields first
    wait_until_logged(json_node, lambda _: any(map(is_access("/healthz"), records(json_node))))
    lines = records(json_node)
    assert lines
    for record in lines:
        assert list(record)[:5] == ["time", "level", "logger", "message", "node"], record
        assert record["node"] == NODE_ID
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        written = datetime.fromisoformat(record["time"])
        assert written.utcoffset() == timedelta(0)
        assert abs((datetime.now(UTC) - written).total_seconds()) < 120
    # Records written outside any MCP request name none.
    started = next(record for record in lines if record["message"].startswith("Starting server"))
    assert not {"era", "method", "session", "trace_id"} & started.keys()
    health = next(record for record in lines if is_access("/healthz")(record))
    assert "era" not in health


# --- the request's fields -------------------------------------------------------------------


def test_a_miss_names_the_session_by_its_hash_and_never_by_its_id(json_node: Node, client: httpx.Client) -> None:
    session_id = f"deadbeef.{secrets.token_hex(24)}"

    response = client.post(json_node.mcp_url, json=LISTING, headers=session_headers(session_id))

    assert response.status_code == 404
    miss = wait_for_record(
        json_node,
        lambda record: (
            record["logger"] == "sessions_app.misroute" and record.get("session") == session_hash(session_id)
        ),
    )
    assert (miss["level"], miss["era"], miss["method"]) == ("WARNING", "handshake", "tools/list")
    assert "trace_id" not in miss
    assert session_id not in json_node.log()


def test_a_tool_in_a_session_logs_with_the_session_hash_and_the_trace_id(json_node: Node, client: httpx.Client) -> None:
    # Given a handshake-era session
    session_id = open_session(client, json_node.mcp_url)
    text = f"handshake call {secrets.token_hex(4)}"

    # When a tool call carrying W3C trace context writes to the node's log
    call_in_session(client, json_node, session_id, log_tool_call(text, {"traceparent": TRACEPARENT}))

    # Then the tool's record names the request it was written for
    record = wait_for_record(json_node, probe_log(text))
    assert record["era"] == "handshake"
    assert record["method"] == "tools/call"
    assert record["session"] == session_hash(session_id)
    assert record["trace_id"] == TRACE_ID
    assert session_id not in json_node.log()


def test_each_request_of_a_session_logs_with_its_own_trace_id(json_node: Node, client: httpx.Client) -> None:
    # The session's handlers run in the task its initialize started: each must still take its own request's fields.
    session_id = open_session(client, json_node.mcp_url)
    other_trace = secrets.token_hex(16)
    first, second, third = (f"call {n} {secrets.token_hex(4)}" for n in range(3))

    call_in_session(client, json_node, session_id, log_tool_call(first, {"traceparent": TRACEPARENT}, 3))
    call_in_session(
        client,
        json_node,
        session_id,
        log_tool_call(second, {"traceparent": f"00-{other_trace}-00f067aa0ba902b7-00"}, 4),
    )
    call_in_session(client, json_node, session_id, log_tool_call(third, {}, 5))

    assert wait_for_record(json_node, probe_log(first))["trace_id"] == TRACE_ID
    assert wait_for_record(json_node, probe_log(second))["trace_id"] == other_trace
    untraced = wait_for_record(json_node, probe_log(third))
    assert "trace_id" not in untraced
    assert untraced["session"] == session_hash(session_id)


def test_a_stateless_tool_call_logs_with_its_era_and_trace_id(json_node: Node, client: httpx.Client) -> None:
    text = f"stateless call {secrets.token_hex(4)}"

    call_stateless(client, json_node, log_tool_call(text, {**modern_meta(), "traceparent": TRACEPARENT}))

    record = wait_for_record(json_node, probe_log(text))
    assert (record["era"], record["method"], record["trace_id"]) == ("stateless", "tools/call", TRACE_ID)
    assert "session" not in record


def test_an_invalid_traceparent_gives_no_trace_id(json_node: Node, client: httpx.Client) -> None:
    text = f"bad trace {secrets.token_hex(4)}"
    upper_case = TRACEPARENT.upper()

    call_stateless(client, json_node, log_tool_call(text, {**modern_meta(), "traceparent": upper_case}))

    record = wait_for_record(json_node, probe_log(text))
    assert record["era"] == "stateless"
    assert "trace_id" not in record


def test_an_exception_is_one_string_field_on_one_line(json_node: Node, client: httpx.Client) -> None:
    text = f"with traceback {secrets.token_hex(4)}"

    call_stateless(client, json_node, log_tool_call(text, modern_meta(), traceback=True))

    # (`records` has checked that every line, this one included, is one JSON object.)
    record = wait_for_record(json_node, probe_log(text))
    assert record["level"] == "ERROR"
    assert isinstance(record["exception"], str)
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: raised to be logged" in record["exception"]
    assert record["method"] == "tools/call"


# --- the setting ------------------------------------------------------------------------------


def test_text_is_the_default_and_unchanged(node_factory: StartNode, client: httpx.Client) -> None:
    node = node_factory(MCP_NODE_ID="text-logs")
    session_id = f"deadbeef.{secrets.token_hex(24)}"

    assert client.post(node.mcp_url, json=LISTING, headers=session_headers(session_id)).status_code == 404

    access = re.compile(r'127\.0\.0\.1:\d+ - - \[.+\] "POST /mcp" 404 \d+')
    wait_until_logged(node, lambda log: "MCP session miss" in log and access.search(log) is not None)
    lines = node.log().splitlines()
    assert not [line for line in lines if line.startswith("{")]
    (miss,) = [line for line in lines if "MCP session miss" in line]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING sessions_app\.misroute MCP session miss: unknown "
        rf"\(session {session_hash(session_id)}, this node text-logs, owner -; .*\): 404",
        miss,
    ), miss
    # daphne's own access log line, as before.
    assert any(access.fullmatch(line) for line in lines), lines


def test_a_node_with_an_unknown_log_format_does_not_start(tmp_path: Path) -> None:
    node = Node(env={"DJANGO_LOG_FORMAT": "yaml"}, log_path=tmp_path / "node.log")

    with pytest.raises(RuntimeError, match="exited early"):
        node.start()

    assert "DJANGO_LOG_FORMAT must be text or json, not 'yaml'" in node.log()


# --- the pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        f"01-{TRACE_ID}-00f067aa0ba902b7-01",
        # A later version may carry more fields.
        f"01-{TRACE_ID}-00f067aa0ba902b7-01-more",
    ],
)
def test_valid_trace_context_gives_its_trace_id(traceparent: str) -> None:
    assert log_context.trace_id_of({"params": {"_meta": {"traceparent": traceparent}}}) == TRACE_ID


@pytest.mark.parametrize(
    "traceparent",
    [
        TRACEPARENT.upper(),
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-more",
        f"00-{TRACE_ID[:-1]}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-00f067aa0ba902b7",
        f" {TRACEPARENT}",
        f"{TRACEPARENT}\n",
        "",
        42,
        None,
    ],
)
def test_invalid_trace_context_gives_none(traceparent: object) -> None:
    assert log_context.trace_id_of({"params": {"_meta": {"traceparent": traceparent}}}) is None


@pytest.mark.parametrize("message", [None, {}, {"params": None}, {"params": {"_meta": "x"}}, {"params": []}])
def test_no_trace_context_gives_none(message: dict[str, Any] | None) -> None:
    assert log_context.trace_id_of(message) is None


async def test_a_task_that_outlives_its_request_stops_logging_as_it() -> None:
    # Given a task started while a request is served (as a session's server loop is by `initialize`)
    handler = log_context.RequestFields()
    seen: list[dict[str, Any]] = []
    request_over = asyncio.Event()

    def fields() -> dict[str, Any]:
        record = logging.LogRecord("test", logging.INFO, __file__, 1, "message", None, None)
        handler.filter(record)
        return {name: getattr(record, name) for name in ("era", "method", "session") if hasattr(record, name)}

    async def background() -> None:
        seen.append(fields())
        await request_over.wait()
        seen.append(fields())

    started: list[asyncio.Task[None]] = []

    async def serve() -> None:
        with log_context.request_scope():
            log_context.describe(Era.HANDSHAKE, "route.secret", {"method": "initialize"})
            started.append(asyncio.get_running_loop().create_task(background()))
            await asyncio.sleep(0)
            seen.append(fields())

    # When the request ends and the task logs again
    await serve()
    request_over.set()
    await started[0]

    # Then only its records from during the request carried the request's fields
    during = {"era": "handshake", "method": "initialize", "session": session_hash("route.secret")}
    assert seen == [during, during, {}]
    assert log_context.current() is None
