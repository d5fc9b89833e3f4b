"""Raw HTTP helpers for talking to /mcp without an SDK in between."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx

ACCEPT_BOTH = "application/json, text/event-stream"
HANDSHAKE_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
BASE_HEADERS = {"Content-Type": "application/json", "Accept": ACCEPT_BOTH}


def initialize_body(request_id: int = 1, version: str = HANDSHAKE_VERSION) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}},
    }


def open_session(client: httpx.Client, url: str) -> str:
    """Initialize a handshake-era session and return its id."""
    response = client.post(url, json=initialize_body(), headers=BASE_HEADERS)
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert client.post(url, json=initialized, headers=session_headers(session_id)).status_code == 202
    return session_id


def session_headers(session_id: str, **extra: str) -> dict[str, str]:
    return {**BASE_HEADERS, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": HANDSHAKE_VERSION, **extra}


def modern_meta(version: str = MODERN_VERSION) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
    }


def modern_request(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**(params or {}), "_meta": modern_meta()}}


def modern_headers(method: str, name: str | None = None, **extra: str) -> dict[str, str]:
    headers = {**BASE_HEADERS, "MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method, **extra}
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


def sse_events(text: str) -> list[dict[str, str]]:
    """Parse an SSE body into events (dicts of field -> value; data lines joined)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[field] = f"{event[field]}\n{value}" if field in event and field == "data" else value
        if event:
            events.append(event)
    return events


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body (priming and retry-only events skipped)."""
    return [json.loads(event["data"]) for event in sse_events(text) if event.get("data")]
