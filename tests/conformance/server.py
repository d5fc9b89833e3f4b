"""The "everything" fixture server the official MCP conformance suite drives.

`server` is a low-level `mcp.server.Server` exposing the tools, resources,
prompts and utilities that `@modelcontextprotocol/conformance` (0.1.16 and
0.2.0-alpha.12) call by fixed names. It is transport-agnostic: any Streamable
HTTP host (the SDK's own Starlette app, or this project's transport) can serve
it, and one instance serves both protocol eras:

* the handshake era (2025-11-25 and older): server-initiated requests
  (sampling, elicitation, roots) travel on the request's SSE stream, logging
  and progress are notifications, `resources/subscribe` is honoured;
* the 2026-07-28 era: no server-initiated requests - interactive tools answer
  with an `InputRequiredResult` and finish when the client retries with
  `inputResponses` (SEP-2322); change notifications ride
  `subscriptions/listen` streams (SEP-2575).

Interactive tools are written once, as a "step" that either completes or asks
for input; `_interact` runs the step in the era's way (see there).

`requestState` tokens are sealed by the SDK's `RequestStateBoundary`. Its key
is process-local unless `CONFORMANCE_REQUEST_STATE_KEY` (>= 32 bytes) is set,
which a host running several worker processes must do so that a retry may
land on any of them.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import secrets
import struct
import wave
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, get_args

import anyio
from mcp import types
from mcp.server import Server
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.connection import allowed_log_levels
from mcp.server.context import ServerRequestContext
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

__all__ = ["server", "subscription_bus"]

logger = logging.getLogger(__name__)

Ctx = ServerRequestContext[Any, Any]

SERVER_NAME: Final = "mcp-conformance-fixture"
SERVER_VERSION: Final = "1.0.0"
STATE_KEY_ENV: Final = "CONFORMANCE_REQUEST_STATE_KEY"


# ---------------------------------------------------------------------------
# Media fixtures, built with the standard library so they are real files.
# ---------------------------------------------------------------------------


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def _one_pixel_png() -> bytes:
    """A 1x1 red RGB PNG."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # width, height, depth 8, RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")


def _silent_wav() -> bytes:
    """Ten milliseconds of 8 kHz 16-bit mono silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 80)
    return buffer.getvalue()


PNG_BYTES: Final = _one_pixel_png()
PNG_BASE64: Final = base64.b64encode(PNG_BYTES).decode("ascii")
WAV_BASE64: Final = base64.b64encode(_silent_wav()).decode("ascii")


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _text_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[_text(text)])


def _image() -> types.ImageContent:
    return types.ImageContent(type="image", data=PNG_BASE64, mime_type="image/png")


def _embedded_text(uri: str, text: str, mime_type: str = "text/plain") -> types.EmbeddedResource:
    return types.EmbeddedResource(
        type="resource",
        resource=types.TextResourceContents(uri=uri, mime_type=mime_type, text=text),
    )


# ---------------------------------------------------------------------------
# Era-aware helpers shared by the handlers.
# ---------------------------------------------------------------------------


def _is_modern(ctx: Ctx) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


async def _log(ctx: Ctx, level: types.LoggingLevel, message: str) -> None:
    """Send a log entry on the request's own stream.

    On 2026-07-28 a request opts in to logs through the reserved
    `io.modelcontextprotocol/logLevel` `_meta` key; without it nothing may be
    sent. `allowed_log_levels` is the SDK's reading of that rule (every level
    is allowed on the handshake era).
    """
    if level not in allowed_log_levels(ctx.protocol_version, ctx.meta):
        return
    notification = types.LoggingMessageNotification(
        params=types.LoggingMessageNotificationParams(level=level, logger="conformance", data=message)
    )
    await ctx.session.send_notification(notification, related_request_id=ctx.request_id)


_CAPABILITY_FOR_METHOD: Final[dict[str, tuple[str, types.ClientCapabilities]]] = {
    "sampling/createMessage": ("sampling", types.ClientCapabilities(sampling=types.SamplingCapability())),
    "elicitation/create": ("elicitation", types.ClientCapabilities(elicitation=types.ElicitationCapability())),
    "roots/list": ("roots", types.ClientCapabilities(roots=types.RootsCapability())),
}


def _client_declares(ctx: Ctx, method: str) -> bool:
    return ctx.session.check_client_capability(_CAPABILITY_FOR_METHOD[method][1])


def _require_capabilities(ctx: Ctx, requests: Mapping[str, types.InputRequest]) -> None:
    """Refuse to ask the client for input it has not declared it can give."""
    missing = sorted({request.method for request in requests.values() if not _client_declares(ctx, request.method)})
    if not missing:
        return
    names = [_CAPABILITY_FOR_METHOD[method][0] for method in missing]
    message = f"This request needs the client capabilities: {', '.join(names)}"
    if _is_modern(ctx):
        # -32021 with `requiredCapabilities` as a ClientCapabilities object, e.g. {"sampling": {}}.
        data = types.MissingRequiredClientCapabilityErrorData(
            required_capabilities=types.ClientCapabilities.model_validate({name: {} for name in names})
        )
        raise MCPError(
            code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
            message=message,
            data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
        )
    raise MCPError(code=types.INVALID_REQUEST, message=message)


async def _ask(ctx: Ctx, request: types.InputRequest) -> types.InputResponse:
    """Handshake era only: send one server-initiated request on the request's stream."""
    related = ServerMessageMetadata(related_request_id=ctx.request_id)
    if isinstance(request, types.CreateMessageRequest):
        return await ctx.session.send_request(request, types.CreateMessageResult, metadata=related)
    if isinstance(request, types.ElicitRequest):
        return await ctx.session.send_request(request, types.ElicitResult, metadata=related)
    return await ctx.session.send_request(request, types.ListRootsResult, metadata=related)


@dataclass(frozen=True)
class Round:
    """What one attempt of an interactive operation knows."""

    responses: Mapping[str, types.InputResponse] = field(default_factory=dict)
    """Answers to the input requests of the previous round, keyed as they were asked."""
    state: str | None = None
    """The plaintext `requestState` the previous round minted (the boundary unsealed it)."""


ResultT = TypeVar("ResultT", types.CallToolResult, types.GetPromptResult)
Step = Callable[[Round], ResultT | types.InputRequiredResult]

_MAX_HANDSHAKE_ROUNDS: Final = 8


async def _interact(
    ctx: Ctx,
    step: Step[ResultT],
    responses: Mapping[str, types.InputResponse] | None,
    state: str | None,
) -> ResultT | types.InputRequiredResult:
    """Run an interactive operation in the way the connection's era allows.

    2026-07-28: one round per request. The step sees the client's
    `inputResponses` and the echoed state; if it still needs input, the
    `InputRequiredResult` goes back to the client, which retries.

    Handshake era: the same step runs in a loop inside this one request, its
    input requests sent to the client as real server-initiated requests on the
    request's SSE stream, until it completes.
    """
    if _is_modern(ctx):
        outcome = step(Round(responses or {}, state))
        if isinstance(outcome, types.InputRequiredResult):
            _require_capabilities(ctx, outcome.input_requests or {})
        return outcome
    current = Round()
    for _ in range(_MAX_HANDSHAKE_ROUNDS):
        outcome = step(current)
        if not isinstance(outcome, types.InputRequiredResult):
            return outcome
        requests = outcome.input_requests or {}
        _require_capabilities(ctx, requests)
        answers = {key: await _ask(ctx, request) for key, request in requests.items()}
        current = Round(answers, outcome.request_state)
    raise MCPError(code=types.INTERNAL_ERROR, message="Interactive operation did not converge")


def _elicit(message: str, schema: dict[str, Any]) -> types.ElicitRequest:
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(prompt: str, max_tokens: int) -> types.CreateMessageRequest:
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=[types.SamplingMessage(role="user", content=_text(prompt))],
            max_tokens=max_tokens,
        )
    )


def _string_schema(*names: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in names},
        "required": list(names),
    }


def _accepted(answer: types.InputResponse | None) -> dict[str, Any] | None:
    """The form content of an accepted elicitation, else None."""
    if isinstance(answer, types.ElicitResult) and answer.action == "accept":
        return dict(answer.content or {})
    return None


def _elicitation_summary(answer: types.InputResponse | None) -> str:
    if not isinstance(answer, types.ElicitResult):
        return "action=none, content={}"
    content = json.dumps(answer.content or {}, separators=(",", ":"), sort_keys=True)
    return f"action={answer.action}, content={content}"


def _sampled_text(answer: types.InputResponse | None) -> str | None:
    if isinstance(answer, types.CreateMessageResult) and isinstance(answer.content, types.TextContent):
        return answer.content.text
    return None


def _load_state(state: str | None) -> dict[str, Any]:
    """Parse a state this server minted; anything else reads as a fresh start."""
    if state is None:
        return {}
    try:
        loaded = json.loads(state)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _dump_state(**values: Any) -> str:
    return json.dumps(values, separators=(",", ":"), sort_keys=True)


# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------

ToolOutcome = types.CallToolResult | types.InputRequiredResult
ToolHandler = Callable[[Ctx, types.CallToolRequestParams], Awaitable[ToolOutcome]]

_EMPTY_SCHEMA: Final[dict[str, Any]] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class _ToolEntry:
    tool: types.Tool
    run: ToolHandler


_TOOLS: dict[str, _ToolEntry] = {}


def _tool(
    name: str, description: str, input_schema: dict[str, Any] | None = None
) -> Callable[[ToolHandler], ToolHandler]:
    """Register a tool; `tools/list` returns them in registration order."""

    def register(run: ToolHandler) -> ToolHandler:
        schema = input_schema if input_schema is not None else _EMPTY_SCHEMA
        _TOOLS[name] = _ToolEntry(types.Tool(name=name, description=description, input_schema=schema), run)
        return run

    return register


StepFactory = Callable[[types.CallToolRequestParams, Ctx], Step[types.CallToolResult]]


def _interactive_tool(
    name: str,
    description: str,
    input_schema: dict[str, Any] | None = None,
) -> Callable[[StepFactory], StepFactory]:
    """Register a tool whose body is a step (see `_interact`).

    The decorated factory receives the call and context and returns the step,
    so a step can close over the tool's arguments and the client's capabilities.
    """

    def register(make_step: StepFactory) -> StepFactory:
        async def run(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
            return await _interact(ctx, make_step(call, ctx), call.input_responses, call.request_state)

        _tool(name, description, input_schema)(run)
        return make_step

    return register


def _argument(call: types.CallToolRequestParams, name: str, default: str) -> str:
    value = (call.arguments or {}).get(name, default)
    return value if isinstance(value, str) else str(value)


@_tool("test_simple_text", "Returns one text content block")
async def _simple_text(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    return _text_result("This is a simple text response for testing.")


@_tool("test_image_content", "Returns one image content block (a 1x1 PNG)")
async def _image_content(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    return types.CallToolResult(content=[_image()])


@_tool("test_audio_content", "Returns one audio content block (a short silent WAV)")
async def _audio_content(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    return types.CallToolResult(content=[types.AudioContent(type="audio", data=WAV_BASE64, mime_type="audio/wav")])


@_tool("test_embedded_resource", "Returns an embedded text resource")
async def _embedded_resource(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    return types.CallToolResult(
        content=[_embedded_text("test://embedded-resource", "This is an embedded resource content.")]
    )


@_tool("test_multiple_content_types", "Returns text, image and embedded resource content together")
async def _multiple_content_types(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    return types.CallToolResult(
        content=[
            _text("Multiple content types test:"),
            _image(),
            _embedded_text("test://mixed-content-resource", '{"test":"data","value":123}', "application/json"),
        ]
    )


@_tool("test_tool_with_logging", "Emits three info log messages while it runs")
async def _tool_with_logging(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    await _log(ctx, "info", "Tool execution started")
    await anyio.sleep(0.05)
    await _log(ctx, "info", "Tool processing data")
    await anyio.sleep(0.05)
    await _log(ctx, "info", "Tool execution completed")
    return _text_result("Tool with logging executed successfully")


@_tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100 when given a progress token")
async def _tool_with_progress(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    for done in (0, 50, 100):
        if done:
            await anyio.sleep(0.05)
        # A no-op when the request carried no `_meta.progressToken`.
        await ctx.session.report_progress(done, 100, f"Completed step {done} of 100")
    return _text_result("Progress tool completed")


@_tool("test_error_handling", "Always fails with a tool execution error")
async def _error_handling(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    return types.CallToolResult(is_error=True, content=[_text("This tool intentionally returns an error for testing")])


@_tool("test_reconnection", "Closes its SSE stream mid-call, then finishes (SEP-1699 polling)")
async def _reconnection(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    await _log(ctx, "info", "Before disconnect")
    # The transport hands a close callback only when it can resume the stream:
    # an event store is configured and the client speaks 2025-11-25 or later.
    # The client then reconnects with GET + Last-Event-ID and the rest of this
    # call (the log below and the result) is replayed onto the new stream.
    if ctx.close_sse_stream is not None:
        await ctx.close_sse_stream()
        await anyio.sleep(0.2)
    await _log(ctx, "info", "After reconnect")
    return _text_result("Reconnection test completed")


_JSON_SCHEMA_2020_12: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@_tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", _JSON_SCHEMA_2020_12)
async def _json_schema_2020_12(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    return _text_result(json.dumps(call.arguments or {}, sort_keys=True))


# -- interactive tools: sampling, elicitation, roots ------------------------


@_interactive_tool(
    "test_sampling",
    "Asks the client's model to answer a prompt",
    {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]},
)
def _sampling(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    prompt = _argument(call, "prompt", "Hello")

    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        if "reply" not in now.responses:
            return types.InputRequiredResult(input_requests={"reply": _sample(prompt, 100)})
        return _text_result(f"LLM response: {_sampled_text(now.responses['reply']) or 'No response'}")

    return step


@_interactive_tool(
    "test_elicitation",
    "Asks the user for a username and an email address",
    {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
)
def _elicitation(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    message = _argument(call, "message", "Please provide your information")
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }

    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        if "user" not in now.responses:
            return types.InputRequiredResult(input_requests={"user": _elicit(message, schema)})
        return _text_result(f"User response: {_elicitation_summary(now.responses['user'])}")

    return step


_SEP1034_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
}


@_interactive_tool("test_elicitation_sep1034_defaults", "Elicits a form whose every field has a default (SEP-1034)")
def _elicitation_defaults(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        if "profile" not in now.responses:
            request = _elicit("Please provide user information", _SEP1034_SCHEMA)
            return types.InputRequiredResult(input_requests={"profile": request})
        return _text_result(f"Elicitation completed: {_elicitation_summary(now.responses['profile'])}")

    return step


_SEP1330_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Single choice, untitled",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Single choice with titles",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Single choice titled the legacy way",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Multiple choice, untitled",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Multiple choice with titles",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}


@_interactive_tool("test_elicitation_sep1330_enums", "Elicits a form using every enum schema variant (SEP-1330)")
def _elicitation_enums(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        if "choices" not in now.responses:
            request = _elicit("Please select values using different enum schema types", _SEP1330_SCHEMA)
            return types.InputRequiredResult(input_requests={"choices": request})
        return _text_result(f"Elicitation completed: {_elicitation_summary(now.responses['choices'])}")

    return step


_NAME_SCHEMA: Final = _string_schema("name")
_FIRST_ROUND: Final = 1
_SECOND_ROUND: Final = 2


@_interactive_tool("test_input_required_result_elicitation", "Asks for the user's name, then greets them")
def _ir_elicitation(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        # Unknown keys in inputResponses are ignored; a missing or declined
        # answer is simply asked for again.
        answer = _accepted(now.responses.get("user_name"))
        if answer is None:
            return types.InputRequiredResult(input_requests={"user_name": _elicit("What is your name?", _NAME_SCHEMA)})
        return _text_result(f"Hello, {answer.get('name', 'stranger')}!")

    return step


@_interactive_tool("test_input_required_result_sampling", "Asks the client's model a question")
def _ir_sampling(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        text = _sampled_text(now.responses.get("capital_question"))
        if text is None:
            request = _sample("What is the capital of France?", 100)
            return types.InputRequiredResult(input_requests={"capital_question": request})
        return _text_result(f"The model answered: {text}")

    return step


@_interactive_tool("test_input_required_result_list_roots", "Asks for the client's roots and lists them")
def _ir_list_roots(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        answer = now.responses.get("client_roots")
        if not isinstance(answer, types.ListRootsResult):
            return types.InputRequiredResult(input_requests={"client_roots": types.ListRootsRequest()})
        uris = ", ".join(str(root.uri) for root in answer.roots) or "none"
        return _text_result(f"Client roots: {uris}")

    return step


_CONFIRM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
}


def _confirm_step(marker: str) -> Step[types.CallToolResult]:
    """Ask for a confirmation and carry a nonce in `requestState` across the round trip."""

    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        state = _load_state(now.state)
        if state.get("marker") == marker and _accepted(now.responses.get("confirm")) is not None:
            return _text_result(f"state-ok: requestState verified (nonce {state.get('nonce')})")
        return types.InputRequiredResult(
            input_requests={"confirm": _elicit("Please confirm", _CONFIRM_SCHEMA)},
            request_state=_dump_state(marker=marker, nonce=secrets.token_hex(8)),
        )

    return step


@_interactive_tool("test_input_required_result_request_state", "Round-trips an opaque requestState")
def _ir_request_state(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    return _confirm_step("request-state")


@_interactive_tool(
    "test_input_required_result_tampered_state",
    "Round-trips an integrity-protected requestState; a tampered one is rejected with -32602",
)
def _ir_tampered_state(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    # The integrity check itself is the SDK's RequestStateBoundary (sealed,
    # authenticated tokens); a modified token never reaches this step.
    return _confirm_step("tamper-check")


@_interactive_tool("test_input_required_result_multiple_inputs", "Asks for a name, a model reply and the roots at once")
def _ir_multiple_inputs(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    wanted: dict[str, types.InputRequest] = {
        "user_name": _elicit("What is your name?", _NAME_SCHEMA),
        "greeting": _sample("Generate a greeting", 50),
        "client_roots": types.ListRootsRequest(),
    }

    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        missing = {key: request for key, request in wanted.items() if key not in now.responses}
        if missing:
            # Re-ask only for what is still missing; the state carries no data.
            return types.InputRequiredResult(input_requests=missing, request_state=_dump_state(step="multiple"))
        name = (_accepted(now.responses["user_name"]) or {}).get("name", "stranger")
        greeting = _sampled_text(now.responses["greeting"]) or "Hello"
        return _text_result(f"{greeting} {name}: all {len(wanted)} inputs received")

    return step


@_interactive_tool("test_input_required_result_multi_round", "Asks two questions in two successive rounds")
def _ir_multi_round(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    name_question = _elicit("Step 1: What is your name?", _NAME_SCHEMA)
    color_question = _elicit("Step 2: What is your favorite color?", _string_schema("color"))

    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        # The state names the round the client is answering (and carries round 1's answer).
        state = _load_state(now.state)
        name = _accepted(now.responses.get("step1"))
        color = _accepted(now.responses.get("step2"))
        if state.get("round") == _SECOND_ROUND and color is not None:
            return _text_result(f"{state.get('name')} likes {color.get('color')}")
        if state.get("round") == _FIRST_ROUND and name is not None:
            state = {"round": _SECOND_ROUND, "name": name.get("name")}
        if state.get("round") == _SECOND_ROUND:
            return types.InputRequiredResult(
                input_requests={"step2": color_question}, request_state=_dump_state(**state)
            )
        return types.InputRequiredResult(
            input_requests={"step1": name_question}, request_state=_dump_state(round=_FIRST_ROUND)
        )

    return step


@_interactive_tool(
    "test_input_required_result_capabilities",
    "Asks only for the kinds of input the client declared it supports",
)
def _ir_capabilities(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    offered: dict[str, types.InputRequest] = {
        "capital_question": _sample("What is the capital of France?", 100),
        "user_name": _elicit("What is your name?", _NAME_SCHEMA),
        "client_roots": types.ListRootsRequest(),
    }
    wanted = {key: request for key, request in offered.items() if _client_declares(ctx, request.method)}

    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        missing = {key: request for key, request in wanted.items() if key not in now.responses}
        if missing:
            return types.InputRequiredResult(input_requests=missing, request_state=_dump_state(step="capabilities"))
        return _text_result(f"Received input for: {', '.join(sorted(wanted)) or 'nothing'}")

    return step


@_interactive_tool("test_missing_capability", "Needs the client's sampling capability (-32021 when undeclared)")
def _missing_capability(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        text = _sampled_text(now.responses.get("completion"))
        if text is None:
            return types.InputRequiredResult(input_requests={"completion": _sample("Say hello", 20)})
        return _text_result(f"Sampled: {text}")

    return step


@_interactive_tool("test_streaming_elicitation", "Asks for a confirmation (on 2026-07-28 as an InputRequiredResult)")
def _streaming_elicitation(call: types.CallToolRequestParams, ctx: Ctx) -> Step[types.CallToolResult]:
    def step(now: Round) -> types.CallToolResult | types.InputRequiredResult:
        if _accepted(now.responses.get("confirm")) is None:
            return types.InputRequiredResult(input_requests={"confirm": _elicit("Please confirm", _CONFIRM_SCHEMA)})
        return _text_result("Confirmed")

    return step


# -- diagnostics for 2026-07-28 (server-stateless scenario) -----------------


_CUSTOM_HEADER_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        # SEP-2243: on 2026-07-28 Streamable HTTP the client mirrors this
        # argument into an `Mcp-Param-Region` header, which the transport checks.
        "region": {"type": "string", "description": "Deployment region", "x-mcp-header": "Region"},
        "query": {"type": "string", "description": "Free text, carried in the body only"},
    },
    "required": ["region"],
}


@_tool("test_custom_headers", "Echoes its arguments; `region` is mirrored into a header", _CUSTOM_HEADER_SCHEMA)
async def _custom_headers(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    return _text_result(json.dumps(call.arguments or {}, sort_keys=True))


@_tool("test_logging_tool", "Logs at info level; on 2026-07-28 only when the request opted in with a logLevel")
async def _logging_tool(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    await _log(ctx, "info", "test_logging_tool ran")
    return _text_result("Logging tool completed")


subscription_bus = InMemorySubscriptionBus()
"""Fan-out for `subscriptions/listen` streams; a multi-process host may swap in its own `SubscriptionBus`."""


@_tool("test_trigger_tool_change", "Announces that the tool list changed")
async def _trigger_tool_change(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    await subscription_bus.publish(ToolsListChanged())
    if not _is_modern(ctx):
        await ctx.session.send_tool_list_changed()
    return _text_result("Tool list change announced")


@_tool("test_trigger_prompt_change", "Announces that the prompt list changed")
async def _trigger_prompt_change(ctx: Ctx, call: types.CallToolRequestParams) -> ToolOutcome:
    await subscription_bus.publish(PromptsListChanged())
    if not _is_modern(ctx):
        await ctx.session.send_prompt_list_changed()
    return _text_result("Prompt list change announced")


async def _list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[entry.tool for entry in _TOOLS.values()])


async def _call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
    entry = _TOOLS.get(params.name)
    if entry is None:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
    return await entry.run(ctx, params)


# ---------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------

_STATIC_TEXT: Final = "This is the content of the static text resource."
_WATCHED_TEXT: Final = "Watched resource content"
_TEMPLATE: Final = "test://template/{id}/data"
_TEMPLATE_PATTERN: Final = re.compile(r"test://template/(?P<id>[^/]+)/data")

_RESOURCES: Final = [
    types.Resource(
        uri="test://static-text",
        name="static-text",
        description="A static text resource",
        mime_type="text/plain",
    ),
    types.Resource(
        uri="test://static-binary",
        name="static-binary",
        description="A static binary resource (a 1x1 PNG)",
        mime_type="image/png",
    ),
    types.Resource(
        uri="test://watched-resource",
        name="watched-resource",
        description="A resource clients may subscribe to",
        mime_type="text/plain",
    ),
]

subscribed_uris: set[str] = set()
"""URIs subscribed through `resources/subscribe` (handshake era; process-wide, for inspection)."""


async def _list_resources(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=list(_RESOURCES))


async def _list_resource_templates(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    template = types.ResourceTemplate(
        uri_template=_TEMPLATE,
        name="template-data",
        description="JSON data for the id in the URI",
        mime_type="application/json",
    )
    return types.ListResourceTemplatesResult(resource_templates=[template])


def _read(uri: str) -> types.TextResourceContents | types.BlobResourceContents:
    if uri == "test://static-text":
        return types.TextResourceContents(uri=uri, mime_type="text/plain", text=_STATIC_TEXT)
    if uri == "test://static-binary":
        return types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG_BASE64)
    if uri == "test://watched-resource":
        return types.TextResourceContents(uri=uri, mime_type="text/plain", text=_WATCHED_TEXT)
    match = _TEMPLATE_PATTERN.fullmatch(uri)
    if match is not None:
        item = match.group("id")
        body = json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
        return types.TextResourceContents(uri=uri, mime_type="application/json", text=body)
    # SEP-2164: an unknown resource is -32602 with the URI in `data`, never empty contents.
    raise MCPError(code=types.INVALID_PARAMS, message="Resource not found", data={"uri": uri})


async def _read_resource(ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    return types.ReadResourceResult(contents=[_read(str(params.uri))])


async def _subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
    subscribed_uris.add(str(params.uri))
    return types.EmptyResult()


async def _unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    subscribed_uris.discard(str(params.uri))
    return types.EmptyResult()


# ---------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------


def _user(content: types.TextContent | types.ImageContent | types.EmbeddedResource) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


def _required(params: types.GetPromptRequestParams, *names: str) -> dict[str, str]:
    given = params.arguments or {}
    missing = [name for name in names if name not in given]
    if missing:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Missing required arguments: {', '.join(missing)}")
    return {name: given[name] for name in names}


def _argument_spec(name: str, description: str) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=True)


_PROMPTS: Final = [
    types.Prompt(name="test_simple_prompt", description="A prompt without arguments"),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt with two required arguments",
        arguments=[_argument_spec("arg1", "First test argument"), _argument_spec("arg2", "Second test argument")],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt that embeds a resource",
        arguments=[_argument_spec("resourceUri", "URI of the resource to embed")],
    ),
    types.Prompt(name="test_prompt_with_image", description="A prompt that includes an image"),
    types.Prompt(
        name="test_input_required_result_prompt",
        description="A prompt that first asks the user for context",
    ),
]


def _context_prompt_step(now: Round) -> types.GetPromptResult | types.InputRequiredResult:
    answer = _accepted(now.responses.get("user_context"))
    if answer is None:
        request = _elicit("What context should the prompt use?", _string_schema("context"))
        return types.InputRequiredResult(input_requests={"user_context": request})
    return types.GetPromptResult(
        description="A prompt built from user-supplied context",
        messages=[_user(_text(f"Use this context: {answer.get('context', '')}"))],
    )


async def _list_prompts(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=list(_PROMPTS))


async def _get_prompt(
    ctx: Ctx, params: types.GetPromptRequestParams
) -> types.GetPromptResult | types.InputRequiredResult:
    if params.name == "test_simple_prompt":
        return types.GetPromptResult(messages=[_user(_text("This is a simple prompt for testing."))])
    if params.name == "test_prompt_with_arguments":
        args = _required(params, "arg1", "arg2")
        text = f"Prompt with arguments: arg1='{args['arg1']}', arg2='{args['arg2']}'"
        return types.GetPromptResult(messages=[_user(_text(text))])
    if params.name == "test_prompt_with_embedded_resource":
        uri = _required(params, "resourceUri")["resourceUri"]
        return types.GetPromptResult(
            messages=[
                _user(_embedded_text(uri, "Embedded resource content for testing.")),
                _user(_text("Please process the embedded resource above.")),
            ]
        )
    if params.name == "test_prompt_with_image":
        return types.GetPromptResult(messages=[_user(_image()), _user(_text("Please analyze the image above."))])
    if params.name == "test_input_required_result_prompt":
        return await _interact(ctx, _context_prompt_step, params.input_responses, params.request_state)
    raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}")


# ---------------------------------------------------------------------------
# Completion and logging
# ---------------------------------------------------------------------------

_COMPLETION_CANDIDATES: Final[dict[tuple[str, str], list[str]]] = {
    ("test_prompt_with_arguments", "arg1"): ["paris", "park", "party", "test", "testValue1"],
    ("test_prompt_with_arguments", "arg2"): ["world", "wonder", "testValue2"],
    (_TEMPLATE, "id"): ["1", "12", "123", "456"],
}


async def _complete(ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
    ref = params.ref
    target = ref.name if isinstance(ref, types.PromptReference) else ref.uri
    candidates = _COMPLETION_CANDIDATES.get((target, params.argument.name), [])
    values = [value for value in candidates if value.startswith(params.argument.value)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))


async def _set_logging_level(ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
    # Accepted and acknowledged. The fixture keeps no per-session log level:
    # the only logging tool logs at `info`, which every test level admits.
    logger.debug("logging/setLevel %s", params.level)
    return types.EmptyResult()


# ---------------------------------------------------------------------------
# The server object
# ---------------------------------------------------------------------------


_CACHEABLE_METHODS: Final[tuple[CacheableMethod, ...]] = get_args(CacheableMethod)


def _request_state_security() -> RequestStateSecurity:
    key = os.environ.get(STATE_KEY_ENV)
    return RequestStateSecurity(keys=[key]) if key else RequestStateSecurity.ephemeral()


server: Server[Any] = Server(
    SERVER_NAME,
    version=SERVER_VERSION,
    description="Fixture server for the official MCP conformance suite",
    instructions="Conformance fixture: every tool, resource and prompt has the name the suite expects.",
    # SEP-2549: every cacheable result carries ttlMs/cacheScope (0 ms, private).
    cache_hints={method: CacheHint(ttl_ms=0, scope="private") for method in _CACHEABLE_METHODS},
    on_list_tools=_list_tools,
    on_call_tool=_call_tool,
    on_list_resources=_list_resources,
    on_list_resource_templates=_list_resource_templates,
    on_read_resource=_read_resource,
    on_subscribe_resource=_subscribe,
    on_unsubscribe_resource=_unsubscribe,
    on_subscriptions_listen=ListenHandler(subscription_bus),
    on_list_prompts=_list_prompts,
    on_get_prompt=_get_prompt,
    on_completion=_complete,
)
# Registered directly rather than as `on_set_logging_level=`, which emits an
# MCPDeprecationWarning at import (logging is deprecated as of 2026-07-28).
# The SDK still answers it only on handshake-era connections.
server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _set_logging_level)
# Seal and verify `requestState` on tools/call, prompts/get and resources/read.
server.middleware.append(RequestStateBoundary(_request_state_security(), default_audience=SERVER_NAME))
