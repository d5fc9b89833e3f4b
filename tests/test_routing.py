"""Session ids that name their node, and the route setting."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from sessions_app.cluster.routing import default_route, new_session_id, route_of, session_id_pattern, short_id
from sessions_app.conf import mcp_settings


def test_a_new_id_is_the_route_then_192_random_bits() -> None:
    session_id = new_session_id("n1")

    route, separator, random_part = session_id.partition(".")
    assert (route, separator) == ("n1", ".")
    assert len(random_part) == 48
    assert int(random_part, 16) >= 0
    assert all(0x21 <= ord(char) <= 0x7E for char in session_id)
    assert new_session_id("n1") != session_id


def test_route_of_reads_the_route_back_and_ignores_ids_without_one() -> None:
    assert route_of(new_session_id("a1b2c3d4")) == "a1b2c3d4"
    # Ids minted before routes existed: 48 hex digits, no separator.
    assert route_of("0123456789abcdef" * 3) is None
    assert route_of(".abc") is None
    assert route_of("abc.") is None
    assert route_of("not a route!.abc") is None


def test_the_default_route_is_opaque_and_stable() -> None:
    route = default_route("node1")

    assert route == default_route("node1")
    assert route != default_route("node2")
    assert len(route) == 8
    assert "node1" not in route


def test_the_proxy_pattern_matches_only_its_routes_ids() -> None:
    import re

    pattern = re.compile(session_id_pattern("ab12"))
    assert pattern.search(new_session_id("ab12"))
    assert not pattern.search(new_session_id("ab123"))
    assert not pattern.search(new_session_id("xab12"))


def test_the_route_setting_wins_over_the_default() -> None:
    with override_settings(MCP_NODE_ID="node7", MCP_NODE_ROUTE=""):
        assert mcp_settings().node_route == default_route("node7")
    with override_settings(MCP_NODE_ID="node7", MCP_NODE_ROUTE="blue"):
        assert mcp_settings().node_route == "blue"


@pytest.mark.parametrize("route", ["has space", "dot.ted", "x" * 33, "^(a)"])
def test_a_route_that_would_break_the_id_or_the_proxy_rule_is_refused(route: str) -> None:
    with override_settings(MCP_NODE_ROUTE=route), pytest.raises(ImproperlyConfigured):
        mcp_settings()


def test_a_short_id_tells_sessions_of_one_node_apart() -> None:
    first, second = new_session_id("n1"), new_session_id("n1")

    assert short_id(first) != short_id(second)
    assert short_id(first).startswith("n1.")
    # Route, dot, 8 of the 48 random digits and an ellipsis: never enough to use the session.
    assert len(short_id(first)) == len("n1.") + 8 + 1
    assert short_id("0123456789abcdef" * 3) == "01234567…"
