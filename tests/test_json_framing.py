"""JSON answers from /mcp say their length, so no HTTP server frames them in chunks; a 204 says none."""

from __future__ import annotations

import httpx2 as httpx

from tests.mcp_http import (
    BASE_HEADERS,
    initialize_body,
    modern_headers,
    modern_request,
    open_session,
    session_headers,
)
from tests.nodes import Node


def assert_framed_by_length(answer: httpx.Response) -> None:
    assert "transfer-encoding" not in answer.headers
    assert answer.headers["content-length"] == str(len(answer.content))


def test_json_answers_carry_their_length(node: Node, http_client: httpx.Client) -> None:
    answers = [
        http_client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS),
        http_client.post(
            node.mcp_url,
            json=modern_request("tools/call", {"name": "echo", "arguments": {"text": "framed"}}),
            headers=modern_headers("tools/call", name="echo"),
        ),
    ]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    session = answers[0].headers["mcp-session-id"]
    answers += [
        http_client.post(node.mcp_url, json=initialized, headers=session_headers(session)),
        http_client.post(node.mcp_url, json=initialized, headers=session_headers("no-such-session")),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 202, 404]
    for answer in answers:
        assert_framed_by_length(answer)
    assert b"framed" in answers[1].content


def test_a_204_says_no_length(node: Node, http_client: httpx.Client) -> None:
    session = open_session(http_client, node.mcp_url)
    answer = http_client.delete(node.mcp_url, headers=session_headers(session))
    assert answer.status_code == 204
    assert "content-length" not in answer.headers
    assert "transfer-encoding" not in answer.headers
