"""The official Python SDK client against a live node, in both protocol eras.

mode="legacy" forces the handshake era (initialize, Mcp-Session-Id);
mode="auto" probes server/discover and so speaks 2026-07-28.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.types import CreateMessageRequestParams, CreateMessageResult, TextContent

from tests.conftest import StartNode
from tests.nodes import Node

ERAS = {"legacy": "2025-11-25", "auto": "2026-07-28"}


@pytest.fixture(scope="module")
def everything(node_factory: StartNode) -> Node:
    return node_factory(MCP_SERVER="tests.conformance.server.server")


def text_of(result: Any) -> str:
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_resources_and_prompts(everything: Node, mode: str) -> None:
    async with Client(everything.mcp_url, mode=mode) as client:
        assert client.protocol_version == ERAS[mode]

        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"test_simple_text", "test_tool_with_progress", "test_sampling"} <= tools
        assert text_of(await client.call_tool("test_simple_text", {})) == "This is a simple text response for testing."

        resource = await client.read_resource("test://static-text")
        assert resource.contents[0].uri == "test://static-text"
        templated = await client.read_resource("test://template/42/data")
        assert "42" in getattr(templated.contents[0], "text", "")

        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "alpha", "arg2": "beta"})
        rendered = prompt.messages[0].content
        assert isinstance(rendered, TextContent)
        assert "alpha" in rendered.text
        assert "beta" in rendered.text


@pytest.mark.parametrize("mode", ERAS)
async def test_progress_reaches_the_client(everything: Node, mode: str) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(everything.mcp_url, mode=mode) as client:
        result = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)

    assert text_of(result) == "Progress tool completed"
    assert seen == [0, 50, 100]


@pytest.mark.parametrize("mode", ERAS)
async def test_server_asks_the_client_for_a_sample(everything: Node, mode: str) -> None:
    prompts: list[str] = []

    async def sample(context: ClientRequestContext, params: CreateMessageRequestParams) -> CreateMessageResult:
        content = params.messages[0].content
        prompts.append(content.text if isinstance(content, TextContent) else "")
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="forty-two"), model="test-model"
        )

    async with Client(everything.mcp_url, mode=mode, sampling_callback=sample) as client:
        result = await client.call_tool("test_sampling", {"prompt": "What is six times seven?"})

    assert prompts == ["What is six times seven?"]
    assert text_of(result) == "LLM response: forty-two"


async def test_closing_a_handshake_client_ends_its_session(everything: Node) -> None:
    async with httpx.AsyncClient() as http:
        before = (await http.get(f"{everything.url}/healthz")).json()["sessions"]
        async with Client(everything.mcp_url, mode="legacy") as client:
            await client.list_tools()
            during = (await http.get(f"{everything.url}/healthz")).json()["sessions"]
        after = (await http.get(f"{everything.url}/healthz")).json()["sessions"]

    assert during == before + 1
    assert after == before


async def test_stateless_clients_leave_no_session(everything: Node) -> None:
    async with httpx.AsyncClient() as http:
        before = (await http.get(f"{everything.url}/healthz")).json()["sessions"]
        async with Client(everything.mcp_url) as client:
            await client.call_tool("test_simple_text", {})
            during = (await http.get(f"{everything.url}/healthz")).json()["sessions"]

    assert during == before
