"""The in-process registry of the embedded default: one node, no Redis.

It keeps the same records and heartbeats as the Redis backend, so the admin,
the reaper and the management command behave the same on a development node.
"""

from __future__ import annotations

import threading
import time

from .base import ListedRecord, SessionRecord, SessionRegistry


class LocMemSessionRegistry(SessionRegistry):
    def __init__(self, *, session_ttl: float, node_ttl: float) -> None:
        super().__init__(session_ttl=session_ttl, node_ttl=node_ttl)
        self._lock = threading.Lock()
        self._records: dict[str, tuple[SessionRecord, float]] = {}
        self._nodes: dict[str, tuple[str, float]] = {}

    def add(self, record: SessionRecord) -> None:
        with self._lock:
            self._records[record.session_id] = (record, time.monotonic() + self.session_ttl)

    def claim(self, record: SessionRecord, previous_node: str, previous_boot: str) -> bool:
        with self._lock:
            entry = self._records.get(record.session_id)
            if entry is None or entry[1] <= time.monotonic():
                return False
            if (entry[0].node_id, entry[0].boot_id) != (previous_node, previous_boot):
                return False
            self._records[record.session_id] = (record, time.monotonic() + self.session_ttl)
            return True

    def remove(self, session_id: str) -> None:
        with self._lock:
            self._records.pop(session_id, None)

    def get(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            entry = self._records.get(session_id)
        return entry[0] if entry is not None and entry[1] > time.monotonic() else None

    def records(self) -> list[ListedRecord]:
        now = time.monotonic()
        with self._lock:
            return [ListedRecord(record, expiry - now) for record, expiry in self._records.values() if expiry > now]

    def heartbeat(self, node_id: str, boot_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            previous = self._nodes.get(node_id)
            self._nodes[node_id] = (boot_id, now + self.node_ttl)
        return previous is not None and previous[0] == boot_id and previous[1] > now

    def forget_node(self, node_id: str, boot_id: str) -> None:
        with self._lock:
            if self._nodes.get(node_id, ("", 0.0))[0] == boot_id:
                del self._nodes[node_id]

    def live_nodes(self) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            return {node: boot for node, (boot, expiry) in self._nodes.items() if expiry > now}
