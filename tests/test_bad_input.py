"""Every kind of bad input gets a clear error with the right status, never a 500 or a hang.

This table is docs/errors.md in test form: keep the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import StartNode
from tests.mcp_http import (
    BASE_HEADERS,
    HANDSHAKE_VERSION,
    initialize_body,
    modern_headers,
    modern_meta,
    modern_request,
    open_session,
    session_headers,
)
from tests.nodes import Node

SESSION = "{session}"  # replaced by a live session id
TOOLS_LIST = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}).encode()
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, HEADER_MISMATCH, UNSUPPORTED_VERSION = (
    -32700,
    -32600,
    -32601,
    -32020,
    -32022,
)


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    code: int | None = None
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: session_headers(SESSION))
    body: bytes = TOOLS_LIST
    response_headers: dict[str, str] = field(default_factory=dict)


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key.lower() != name.lower()}


def _modern(method: str, params: dict[str, Any] | None = None, version: str | None = None) -> bytes:
    body = modern_request(method, params)
    if version is not None:
        body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = version
    return json.dumps(body).encode()


# Neither a string nor an integer: read as notifications by the SDK's types, they used to get 202.
_BAD_IDS = [("an object", b'{"a": 1}'), ("null", b"null"), ("a float", b"1.5"), ("a boolean", b"true")]

CASES = [
    Case("origin not allowed", 403, INVALID_REQUEST, headers=session_headers(SESSION, Origin="http://evil.example")),
    Case("host not allowed", 421, INVALID_REQUEST, headers=session_headers(SESSION, Host="evil.example")),
    Case("malformed JSON", 400, PARSE_ERROR, body=b'{"jsonrpc": "2.0", "id": 1,'),
    Case("body not UTF-8", 400, PARSE_ERROR, body=b'{"jsonrpc": "\xff\xfe"}'),
    Case("JSON-RPC batch", 400, INVALID_REQUEST, body=b"[" + TOOLS_LIST + b"]"),
    Case("body is a string", 400, INVALID_REQUEST, body=b'"tools/list"'),
    Case("body is a number", 400, INVALID_REQUEST, body=b"42"),
    Case("object that is not JSON-RPC", 400, INVALID_REQUEST, body=b'{"hello": "world"}'),
    Case("empty body", 400, PARSE_ERROR, body=b""),
    *(
        Case(
            f"request id is {kind}",
            400,
            INVALID_REQUEST,
            body=b'{"jsonrpc": "2.0", "id": %s, "method": "tools/list"}' % value,
        )
        for kind, value in _BAD_IDS
    ),
    *(
        Case(
            f"2026-07-28: request id is {kind}",
            400,
            INVALID_REQUEST,
            headers=modern_headers("tools/list"),
            body=_modern("tools/list").replace(b'"id": 1', b'"id": ' + value),
        )
        for kind, value in _BAD_IDS
    ),
    Case(
        "wrong Content-Type", 415, INVALID_REQUEST, headers=session_headers(SESSION, **{"Content-Type": "text/plain"})
    ),
    # Stock daphne lets Twisted answer this one with a bare HTML 400 before the
    # application sees it; mcpsite/http_server.py leaves the body to us.
    Case(
        "multipart form body without a boundary",
        415,
        INVALID_REQUEST,
        headers=session_headers(SESSION, **{"Content-Type": "multipart/form-data"}),
        body=b"no boundary, so not a form",
    ),
    Case("missing Content-Type", 415, INVALID_REQUEST, headers=_without(session_headers(SESSION), "Content-Type")),
    Case("Accept without SSE", 406, INVALID_REQUEST, headers=session_headers(SESSION, Accept="application/json")),
    Case("Accept without JSON", 406, INVALID_REQUEST, headers=session_headers(SESSION, Accept="text/event-stream")),
    Case("empty Accept", 406, INVALID_REQUEST, headers=session_headers(SESSION, Accept="")),
    Case("oversized body", 413, INVALID_REQUEST, body=b'{"pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'),
    Case("session id with a space", 400, INVALID_REQUEST, headers=session_headers("abc def")),
    Case("session id with a control character", 400, INVALID_REQUEST, headers=session_headers("abc\x7fdef")),
    Case("missing session id", 400, INVALID_REQUEST, headers=BASE_HEADERS),
    Case("unknown session id", 404, INVALID_REQUEST, headers=session_headers("no-such-session")),
    Case(
        "unsupported MCP-Protocol-Version on a session",
        400,
        INVALID_REQUEST,
        headers=session_headers(SESSION, **{"MCP-Protocol-Version": "1999-01-01"}),
    ),
    Case(
        "GET without Accept: text/event-stream",
        406,
        INVALID_REQUEST,
        method="GET",
        headers=session_headers(SESSION, Accept="application/json"),
    ),
    Case("GET without session id", 400, INVALID_REQUEST, method="GET", headers={"Accept": "text/event-stream"}),
    Case(
        "GET with a Last-Event-ID of no stream",
        400,
        INVALID_REQUEST,
        method="GET",
        headers=session_headers(SESSION, Accept="text/event-stream", **{"Last-Event-ID": "99.1"}),
    ),
    Case(
        "GET with a malformed Last-Event-ID",
        400,
        INVALID_REQUEST,
        method="GET",
        headers=session_headers(SESSION, Accept="text/event-stream", **{"Last-Event-ID": "garbage"}),
    ),
    Case("DELETE without session id", 400, INVALID_REQUEST, method="DELETE", headers={}),
    Case("DELETE of an unknown session", 404, INVALID_REQUEST, method="DELETE", headers=session_headers("gone")),
    Case("PUT", 405, INVALID_REQUEST, method="PUT", response_headers={"allow": "GET, POST, DELETE"}),
    Case("PATCH", 405, INVALID_REQUEST, method="PATCH", response_headers={"allow": "GET, POST, DELETE"}),
    Case(
        "2026-07-28: Mcp-Method header does not match the body",
        400,
        HEADER_MISMATCH,
        headers=modern_headers("tools/call", name="echo"),
        body=_modern("tools/list"),
    ),
    Case(
        "2026-07-28: Mcp-Name header does not match the body",
        400,
        HEADER_MISMATCH,
        headers=modern_headers("tools/call", name="other"),
        body=_modern("tools/call", {"name": "echo", "arguments": {"text": "x"}}),
    ),
    Case(
        "2026-07-28: unsupported protocol version",
        400,
        UNSUPPORTED_VERSION,
        headers=modern_headers("tools/list", **{"MCP-Protocol-Version": "2099-01-01"}),
        body=_modern("tools/list", version="2099-01-01"),
    ),
    Case(
        "2026-07-28: unknown method",
        404,
        METHOD_NOT_FOUND,
        headers=modern_headers("no/such/method"),
        body=_modern("no/such/method"),
    ),
]


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def session_id(node: Node, client: httpx.Client) -> str:
    return open_session(client, node.mcp_url)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_clear_error(node: Node, client: httpx.Client, session_id: str, case: Case) -> None:
    headers = {name: value.replace(SESSION, session_id) for name, value in case.headers.items()}
    response = client.request(case.method, node.mcp_url, headers=headers, content=case.body)

    assert response.status_code == case.status, response.text
    for name, value in case.response_headers.items():
        assert response.headers.get(name) == value
    if case.code is not None:
        assert response.headers["content-type"] == "application/json"
        error = response.json()
        assert error["jsonrpc"] == "2.0"
        assert error["error"]["code"] == case.code
        assert error["error"]["message"]


def test_bad_input_leaves_the_session_working(node: Node, client: httpx.Client, session_id: str) -> None:
    """After the whole table ran against it, the session still answers."""
    response = client.post(node.mcp_url, content=TOOLS_LIST, headers=session_headers(session_id))
    assert response.status_code == 200
    assert '"name":"echo"' in response.text


def test_unknown_method_in_a_session_is_a_json_rpc_error(node: Node, client: httpx.Client, session_id: str) -> None:
    body = {"jsonrpc": "2.0", "id": 9, "method": "no/such/method"}
    response = client.post(node.mcp_url, json=body, headers=session_headers(session_id))
    assert response.status_code == 200
    assert f'"code":{METHOD_NOT_FOUND}' in response.text


def test_second_standalone_stream_is_a_conflict(node: Node, client: httpx.Client) -> None:
    session_id = open_session(client, node.mcp_url)
    headers = session_headers(session_id, Accept="text/event-stream")
    with client.stream("GET", node.mcp_url, headers=headers) as first:
        assert first.status_code == 200
        second = client.get(node.mcp_url, headers=headers)
        assert second.status_code == 409
        assert second.json()["error"]["code"] == INVALID_REQUEST


def test_initialize_with_unknown_version_negotiates_ours(node: Node, client: httpx.Client) -> None:
    response = client.post(node.mcp_url, json=initialize_body(version="1999-01-01"), headers=BASE_HEADERS)
    assert response.status_code == 200
    assert response.json()["result"]["protocolVersion"] == HANDSHAKE_VERSION
    assert "mcp-session-id" in response.headers


def test_modern_notification_is_accepted(node: Node, client: httpx.Client) -> None:
    body = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "_meta": modern_meta()}}
    response = client.post(node.mcp_url, json=body, headers={**modern_headers("notifications/cancelled")})
    assert response.status_code == 202
    assert response.content == b""


def test_json_accept_alone_is_refused_for_sse_mode(node: Node, client: httpx.Client) -> None:
    response = client.post(node.mcp_url, json=initialize_body(), headers={**BASE_HEADERS, "Accept": "application/json"})
    assert response.status_code == 406
    assert "text/event-stream" in response.json()["error"]["message"]


def test_json_response_mode_needs_and_answers_only_json(node_factory: StartNode, client: httpx.Client) -> None:
    json_node = node_factory(MCP_JSON_RESPONSE="1")
    json_only = {**BASE_HEADERS, "Accept": "application/json"}
    initialized = client.post(json_node.mcp_url, json=initialize_body(), headers=json_only)
    assert initialized.status_code == 200
    headers = {**session_headers(initialized.headers["mcp-session-id"]), "Accept": "application/json"}

    listing = client.post(json_node.mcp_url, content=TOOLS_LIST, headers=headers)

    assert listing.status_code == 200
    assert listing.headers["content-type"] == "application/json"
    assert [tool["name"] for tool in listing.json()["result"]["tools"]] == ["echo"]
