"""Fair admission: how much of a node one client may hold.

A node's global caps (MCP_MAX_SESSIONS, the SDK's listen-stream limit) stop
it from running out of memory, but one client alone can reach them and lock
everyone else out. So sessions and `subscriptions/listen` streams are also
counted per client, and a client at its share gets 429 while others carry on.

Who counts as one client is `http.request.client_of`. Counts are per
process, like the global caps.
"""

from __future__ import annotations

from collections import Counter

from sessions_app.http.exceptions import TooManyRequests


class ClientQuota:
    """At most `limit` of something per client at once (0: no limit)."""

    def __init__(self, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit
        self._held: Counter[str] = Counter()

    def take(self, client: str) -> None:
        """Count one more for `client`; raises TooManyRequests (429) at its limit."""
        if self.limit and self._held[client] >= self.limit:
            raise TooManyRequests(
                f"Too Many Requests: this client already holds {self.limit} {self.what} on this node;"
                " end some, or try again later",
                headers={"Retry-After": "5"},
            )
        self._held[client] += 1

    def add(self, client: str) -> None:
        """Count one more for `client` whatever its limit (a session adopted, not admitted)."""
        self._held[client] += 1

    def give_back(self, client: str) -> None:
        if self._held[client] <= 1:
            del self._held[client]
        else:
            self._held[client] -= 1

    def clear(self) -> None:
        self._held.clear()
