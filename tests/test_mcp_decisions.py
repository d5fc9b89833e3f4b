"""The project's MCP server on the decision log, through the official Python SDK client, in both eras."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference, ResourceTemplateReference, TextContent

from tests.nodes import Node, manage

ERAS = {"legacy": "2025-11-25", "auto": "2026-07-28"}
RECORD = {
    "title": "Keep transport state out of Redis",
    "category": "Backend",
    "context": "Sessions hold live streams and tasks.",
    "decision": "Redis records which sessions exist and where; nothing else.",
    "consequences": "A session cannot move; clients re-initialize after a node dies.",
}


@pytest.fixture(scope="module")
def decision_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    workdir = tmp_path_factory.mktemp("decisions")
    env = {"DJANGO_SQLITE_PATH": str(workdir / "db.sqlite3"), "MCP_SERVER": "graphql_app.mcp.server.server"}
    manage(env, "migrate", "--noinput")
    node = Node(env=env, log_path=workdir / "node.log").start()
    yield node
    node.stop()


def text_of(result: Any) -> str:
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text


@pytest.mark.parametrize("mode", ERAS)
async def test_propose_read_search_and_accept(decision_node: Node, mode: str) -> None:
    async with Client(decision_node.mcp_url, mode=mode) as client:
        assert client.protocol_version == ERAS[mode]
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"search_decisions", "read_decision", "propose_decision", "change_decision_status"}

        proposed = await client.call_tool("propose_decision", {**RECORD, "title": f"{RECORD['title']} ({mode})"})
        assert not proposed.is_error
        number = int(text_of(proposed).split()[2])
        uri = f"adr://{number}"

        page = await client.read_resource(uri)
        markdown = getattr(page.contents[0], "text", "")
        assert markdown.startswith(f"# ADR {number}: {RECORD['title']} ({mode})")
        assert "## Consequences" in markdown
        assert uri in [str(resource.uri) for resource in (await client.list_resources()).resources]

        found = await client.call_tool("search_decisions", {"text": mode, "status": "proposed"})
        assert f"ADR {number} [proposed]" in text_of(found)

        accepted = await client.call_tool("change_decision_status", {"number": number, "status": "accepted"})
        assert not accepted.is_error
        assert f"ADR {number} [accepted]" in text_of(accepted)


@pytest.mark.parametrize("mode", ERAS)
async def test_bad_arguments_are_useful_tool_errors(decision_node: Node, mode: str) -> None:
    async with Client(decision_node.mcp_url, mode=mode) as client:
        missing = await client.call_tool("propose_decision", {"title": "Half a record"})
        assert missing.is_error
        assert "context" in text_of(missing)

        wrong_category = await client.call_tool("propose_decision", {**RECORD, "category": "Astrology"})
        assert wrong_category.is_error
        assert "Astrology" in text_of(wrong_category) or "category" in text_of(wrong_category).lower()

        nowhere = await client.call_tool("read_decision", {"number": 9999})
        assert nowhere.is_error
        assert "9999" in text_of(nowhere)

        no_target = await client.call_tool("change_decision_status", {"number": 1, "status": "superseded"})
        assert no_target.is_error
        assert "superseded_by" in text_of(no_target)


@pytest.mark.parametrize("mode", ERAS)
async def test_template_prompt_and_completion(decision_node: Node, mode: str) -> None:
    async with Client(decision_node.mcp_url, mode=mode) as client:
        await client.call_tool("propose_decision", RECORD)
        templates = (await client.list_resource_templates()).resource_templates
        assert [template.uri_template for template in templates] == ["adr://{number}"]

        prompt = await client.get_prompt("draft_decision", {"description": "Use Redis only as a register"})
        text = prompt.messages[0].content
        assert isinstance(text, TextContent)
        assert "Use Redis only as a register" in text.text
        assert "propose_decision" in text.text

        categories = await client.complete(PromptReference(name="draft_decision"), {"name": "category", "value": "re"})
        assert categories.completion.values == ["Real-Time"]
        numbers = await client.complete(
            ResourceTemplateReference(uri="adr://{number}"), {"name": "number", "value": ""}
        )
        assert "1" in numbers.completion.values

        with pytest.raises(MCPError) as missing:
            await client.read_resource("adr://424242")
        assert missing.value.error.code == -32002
