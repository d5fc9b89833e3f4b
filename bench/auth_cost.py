"""Scenario 10: what checking a bearer token adds to a `tools/call`, in both eras.

bench/app_only.py's measurement of our application alone (the echo server, JSON
answers, no HTTP server, a fresh interpreter pinned to the server core), run
three ways: `off` (MCP_AUTH=off, no token); `cached` (MCP_AUTH=jwt with the
default MCP_AUTH_CACHE_SECONDS, so after the first request the token is a
dictionary lookup); `jwt` (MCP_AUTH_CACHE_SECONDS=0, so every request verifies
the RS256 signature, issuer, audience and expiry). What a variant costs beyond
`off` is what authorization adds to the server's CPU per call.

The token comes from tests/token_issuer.py's issuer: a real HTTP server on
loopback in this process, whose metadata and JWKS each measured interpreter
fetches once, at its first request (in the warm-up, off the clock).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from . import app_only

VARIANTS = ("off", "cached", "jwt")
# The resource the token names: the harness's requests carry Host app_only.HOST.
RESOURCE = f"http://{app_only.HOST}/mcp"
# The echo server's tool declares no access, so calling it needs the write scope.
SCOPE = "mcp:read mcp:write"
# Longer than any run: an expiry mid-run would turn the calls into cheap 401s.
TOKEN_LIFETIME_S = 3600


@dataclass(frozen=True)
class AuthCost:
    """Our application's CPU microseconds per request, cheapest slice, by variant and era."""

    costs: dict[str, dict[str, float]]
    requests: int
    rounds: int

    def added(self, variant: str, era: str) -> float:
        """What `variant` costs per call beyond authorization off."""
        return self.costs[variant][era] - self.costs["off"][era]


def measure(*, requests: int, rounds: int, warmup: int, turns: int = 2) -> AuthCost:
    """Each variant `turns` times, alternating as app_only.measure does; the cheapest counts."""
    # Imported here: the module makes its RSA keys on import, which only this scenario needs.
    from tests.token_issuer import Issuer

    issuer = Issuer()
    try:
        token = issuer.token(RESOURCE, scope=SCOPE, exp=int(time.time()) + TOKEN_LIFETIME_S)
        checked = {
            "MCP_AUTH": "jwt",
            "MCP_AUTH_ISSUER": issuer.url,
            "MCP_RESOURCE_URI": RESOURCE,
            app_only.AUTHORIZATION_ENV: f"Bearer {token}",
        }
        environments = {
            "off": {"MCP_AUTH": "off"},
            "cached": checked,  # the default cache
            "jwt": {**checked, "MCP_AUTH_CACHE_SECONDS": "0"},
        }
        runs = {
            variant: functools.partial(app_only.run_side, "ours", requests, rounds, warmup, **environments[variant])
            for variant in VARIANTS
        }
        costs = app_only.cheapest_of_turns(runs, turns)
    finally:
        issuer.stop()
    return AuthCost(costs, requests, rounds * turns)
