"""JSON answers from /mcp say their length, so no HTTP server frames them in chunks; a 204 says none."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.mcp_http import (
    BASE_HEADERS,
    initialize_body,
    modern_headers,
    modern_request,
    open_session,
    session_headers,
)
from tests.nodes import Node


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def assert_framed_by_length(answer: httpx.Response) -> None:
    assert "transfer-encoding" not in answer.headers
    assert answer.headers["content-length"] == str(len(answer.content))


def test_json_answers_carry_their_length(node: Node, client: httpx.Client) -> None:
    answers = [
        client.post(node.mcp_url, json=initialize_body(), headers=BASE_HEADERS),
        client.post(
            node.mcp_url,
            json=modern_request("tools/call", {"name": "echo", "arguments": {"text": "framed"}}),
            headers=modern_headers("tools/call", name="echo"),
        ),
    ]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    session = answers[0].headers["mcp-session-id"]
    answers += [
        client.post(node.mcp_url, json=initialized, headers=session_headers(session)),
        client.post(node.mcp_url, json=initialized, headers=session_headers("no-such-session")),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 202, 404]
    for answer in answers:
        assert_framed_by_length(answer)
    assert b"framed" in answers[1].content


def test_a_204_says_no_length(node: Node, client: httpx.Client) -> None:
    session = open_session(client, node.mcp_url)
    answer = client.delete(node.mcp_url, headers=session_headers(session))
    assert answer.status_code == 204
    assert "content-length" not in answer.headers
    assert "transfer-encoding" not in answer.headers
