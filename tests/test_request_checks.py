"""The checks every /mcp request passes first: who may call, what it must send, what its body must be."""

from __future__ import annotations

import dataclasses

import pytest

from sessions_app.conf import McpSettings
from sessions_app.http.exceptions import (
    BadRequest,
    ForbiddenOrigin,
    MisdirectedHost,
    NotAcceptable,
    ParseError,
    UnsupportedMediaType,
)
from sessions_app.http.request import (
    McpRequest,
    parse_message_object,
    require_post_headers,
    require_session_id_syntax,
    require_trusted_caller,
)

SETTINGS = McpSettings(
    server="sessions_app.echo_server.server",
    node_id="test-node",
    node_route="t1",
    allowed_origins=("http://localhost", "https://app.example:8443", "http://[::1]"),
    allowed_hosts=("localhost", "127.0.0.1", "[::1]", "mcp.example"),
    max_sessions=10,
    session_idle_timeout=60.0,
    max_body_bytes=1024,
    max_requests_per_session=8,
    event_log_max_events=16,
    event_log_max_bytes=4096,
    sse_retry_ms=1000,
    sse_keepalive=15.0,
    json_response=False,
    node_heartbeat_ttl=10.0,
    reaper_interval=30.0,
    stale_grace=60.0,
    shutdown_drain_delay=0.0,
    shutdown_grace=5.0,
)
ACCEPT_BOTH = "application/json, text/event-stream"


def request(method: str = "POST", **headers: str) -> McpRequest:
    """A request with the given headers (keyword names use _ for -), as `from_scope` would build it."""
    scope = {
        "method": method,
        "headers": [(name.replace("_", "-").encode(), value.encode("latin-1")) for name, value in headers.items()],
    }
    return McpRequest.from_scope(scope)


# --- from_scope ------------------------------------------------------------


def test_from_scope_lower_cases_names_and_joins_repeated_headers() -> None:
    scope = {
        "method": "POST",
        "headers": [(b"Accept", b"application/json"), (b"ACCEPT", b"text/event-stream"), (b"Mcp-Session-Id", b"abc")],
    }
    parsed = McpRequest.from_scope(scope)

    assert parsed.headers == {"accept": "application/json, text/event-stream", "mcp-session-id": "abc"}
    assert parsed.session_id == "abc"
    assert parsed.accepts("text/event-stream")


# --- require_trusted_caller --------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8000", "LOCALHOST:8000", "127.0.0.1:1", "mcp.example", "[::1]", "[::1]:8000"],
)
def test_allowed_host_with_or_without_port_is_trusted(host: str) -> None:
    require_trusted_caller(request(host=host), SETTINGS)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "localhost.evil.example",
        "[::2]:8000",
        "::1",
        "",
        "[::1]evil.example",
        "localhost:http",
        "[::1]:x",
    ],
)
def test_disallowed_host_is_misdirected(host: str) -> None:
    with pytest.raises(MisdirectedHost) as raised:
        require_trusted_caller(request(host=host), SETTINGS)
    assert raised.value.status == 421


def test_missing_host_is_misdirected() -> None:
    with pytest.raises(MisdirectedHost):
        require_trusted_caller(request(), SETTINGS)


def test_wildcard_host_admits_any_host() -> None:
    anywhere = dataclasses.replace(SETTINGS, allowed_hosts=("*",))

    require_trusted_caller(request(host="evil.example:8000"), anywhere)
    require_trusted_caller(request(), anywhere)


def test_no_origin_is_fine() -> None:
    require_trusted_caller(request(host="localhost:8000"), SETTINGS)


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost",
        "http://localhost/",
        "HTTP://LOCALHOST",
        "http://localhost:3000",
        "http://localhost:65535",
        "http://[::1]",
        "http://[::1]:5173",
        "https://app.example:8443",
    ],
)
def test_allowed_origin_is_trusted(origin: str) -> None:
    require_trusted_caller(request(host="localhost", origin=origin), SETTINGS)


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://evil.example:3000",
        "https://localhost",  # the entry is for http only
        "http://localhost.evil.example",
        "https://app.example",  # the entry names a port; no other port is admitted
        "https://app.example:9443",
        "http://[::2]:5173",
        "null",
        "",
        "http://evil.example@localhost",  # userinfo: browsers never send it
        "http://localhost:abc",
        "http://localhost/path",
    ],
)
def test_disallowed_origin_is_forbidden(origin: str) -> None:
    with pytest.raises(ForbiddenOrigin) as raised:
        require_trusted_caller(request(host="localhost", origin=origin), SETTINGS)
    assert raised.value.status == 403


def test_wildcard_origin_admits_any_origin() -> None:
    anyone = dataclasses.replace(SETTINGS, allowed_origins=("*",))

    require_trusted_caller(request(host="localhost", origin="http://evil.example"), anyone)
    require_trusted_caller(request(host="localhost", origin="null"), anyone)


def test_host_is_checked_even_when_the_origin_is_allowed() -> None:
    with pytest.raises(MisdirectedHost):
        require_trusted_caller(request(host="evil.example", origin="http://localhost"), SETTINGS)


# --- accepts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "json", "sse"),
    [
        ("application/json", True, False),
        ("text/event-stream", False, True),
        (ACCEPT_BOTH, True, True),
        ("application/*", True, False),
        ("text/*", False, True),
        ("*/*", True, True),
        ("application/json;q=0.9, text/event-stream;q=0.5", True, True),
        ("APPLICATION/JSON ,  Text/Event-Stream", True, True),
        ("text/html, image/*", False, False),
        ("application/jsonx", False, False),
        ("", False, False),
    ],
)
def test_accepts_understands_lists_parameters_and_wildcards(accept: str, json: bool, sse: bool) -> None:
    parsed = request(accept=accept)

    assert parsed.accepts("application/json") is json
    assert parsed.accepts("text/event-stream") is sse


def test_accepts_nothing_without_an_accept_header() -> None:
    assert not request().accepts("application/json")


# --- require_post_headers ---------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
)
def test_json_content_type_with_or_without_parameters_is_accepted(content_type: str) -> None:
    require_post_headers(request(content_type=content_type, accept=ACCEPT_BOTH), json_only=False)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", ""])
def test_other_content_types_are_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        require_post_headers(request(content_type=content_type, accept=ACCEPT_BOTH), json_only=False)
    assert raised.value.status == 415


def test_missing_content_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType):
        require_post_headers(request(accept=ACCEPT_BOTH), json_only=True)


def test_content_type_is_checked_before_accept() -> None:
    with pytest.raises(UnsupportedMediaType):
        require_post_headers(request(content_type="text/plain", accept="text/html"), json_only=False)


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream", "text/html", ""])
def test_sse_mode_needs_both_json_and_sse_in_accept(accept: str) -> None:
    with pytest.raises(NotAcceptable) as raised:
        require_post_headers(request(content_type="application/json", accept=accept), json_only=False)
    assert raised.value.status == 406


@pytest.mark.parametrize("accept", [ACCEPT_BOTH, "*/*", "application/*, text/*"])
def test_sse_mode_accepts_both_or_wildcards(accept: str) -> None:
    require_post_headers(request(content_type="application/json", accept=accept), json_only=False)


def test_json_only_mode_needs_just_json_in_accept() -> None:
    require_post_headers(request(content_type="application/json", accept="application/json"), json_only=True)
    with pytest.raises(NotAcceptable):
        require_post_headers(request(content_type="application/json", accept="text/event-stream"), json_only=True)


# --- parse_message_object ------------------------------------------------------


def test_one_object_is_parsed() -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'

    assert parse_message_object(body) == {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def test_utf8_body_is_decoded() -> None:
    assert parse_message_object('{"text": "héllo ☃"}'.encode()) == {"text": "héllo ☃"}


def test_batch_is_refused_as_invalid_request_not_a_parse_error() -> None:
    with pytest.raises(BadRequest, match="batch") as raised:
        parse_message_object(b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]')
    assert not isinstance(raised.value, ParseError)


@pytest.mark.parametrize("body", [b'"tools/list"', b"42", b"null", b"true"])
def test_scalar_is_refused_as_invalid_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match="one JSON-RPC message object") as raised:
        parse_message_object(body)
    assert not isinstance(raised.value, ParseError)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b'{"jsonrpc": "2.0", "id": 1,',
        b'{"jsonrpc": "\xff\xfe"}',  # not UTF-8
        b"\xc3\x28",  # a truncated UTF-8 sequence
        b"{'single': 'quotes'}",
        b'{"n": undefined}',
        b"[" * 100_000,  # deep nesting must not crash the parser
        b'{"a":' * 100_000,
        b"1" * 5000,  # more digits than int() parses
    ],
    ids=[
        "empty",
        "blank",
        "truncated",
        "not-utf8",
        "bad-utf8-seq",
        "single-quotes",
        "undefined",
        "deep-list",
        "deep-obj",
        "huge-int",
    ],
)
def test_unparseable_body_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError) as raised:
        parse_message_object(body)
    assert raised.value.status == 400
    assert raised.value.code == -32700


# --- require_session_id_syntax ---------------------------------------------------


@pytest.mark.parametrize("session_id", ["a", "abc-DEF_123", "!~", "x" * 200, "Zm9v+/=.:"])
def test_visible_ascii_session_ids_are_fine(session_id: str) -> None:
    require_session_id_syntax(session_id)


@pytest.mark.parametrize("session_id", ["", "abc def", "abc\tdef", "abc\x7fdef", "\x00", "caf\xe9", "snow☃"])
def test_other_session_ids_are_bad_requests(session_id: str) -> None:
    with pytest.raises(BadRequest) as raised:
        require_session_id_syntax(session_id)
    assert raised.value.status == 400
