"""A logging filter that keeps a flood of like records from flooding the log.

Records are alike when they come from the same logger, at the same level,
with the same message template (`record.msg` before its arguments). Of each
kind, the first `burst` records in a window of `window` seconds pass; the
rest are counted and dropped, and the first record of the kind to pass in a
later window says how many were dropped: "... (and 1234 more like it in the
last 60 s)". A flood that stops is reported by its next record, whenever
that comes; the count is never lost, only late.

Wired in settings.LOGGING on the loggers an outsider can make talk
(`sessions_app.misroute`: every bogus session id; `django.security.DisallowedHost`:
every bad Host).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass


@dataclass
class _Kind:
    window_start: float
    passed: int = 0
    dropped: int = 0


class RateLimited(logging.Filter):
    """Let `burst` records of a kind through per `window` seconds; count the others and say so later."""

    def __init__(self, window: float = 60.0, burst: int = 5) -> None:
        super().__init__()
        self.window = window
        self.burst = burst
        self._kinds: dict[tuple[str, int, str], _Kind] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # Message templates are few (they are in the code), so the table stays small.
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        with self._lock:
            kind = self._kinds.setdefault(key, _Kind(window_start=now))
            dropped_before = 0
            if now - kind.window_start >= self.window:
                dropped_before = kind.dropped
                kind.window_start, kind.passed, kind.dropped = now, 0, 0
            if kind.passed >= self.burst:
                kind.dropped += 1
                return False
            kind.passed += 1
        if dropped_before:
            record.msg = f"{record.msg} (and {dropped_before} more like it in the last {self.window:g} s)"
        return True
