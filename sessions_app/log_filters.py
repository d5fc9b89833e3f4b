"""Logging filters of the sessions app (wired in settings.LOGGING)."""

from __future__ import annotations

import logging


class DrainingHealthCheck(logging.Filter):
    """Drop Django's error record for /healthz answering 503: that is a draining node saying so, not a fault.

    The drain says it once itself, at INFO (cluster/shutdown.py, `announce_refused_health_check`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return not (getattr(record, "status_code", None) == 503 and getattr(request, "path", None) == "/healthz")


class WithoutTraceback(logging.Filter):
    """One line instead of a traceback: for records about bad input (a bad Host), where the stack says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True
