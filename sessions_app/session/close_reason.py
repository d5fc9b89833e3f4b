"""Why a session ended: the one vocabulary of the logs, the cross-node close message and the metrics."""

from __future__ import annotations

from enum import StrEnum


class CloseReason(StrEnum):
    """The value is what the log says; `label` is the metric's `reason`."""

    DELETE = "client DELETE"
    UNUSED = "unused since initialize"
    ABANDONED = "abandoned: its streams dropped, nothing since"
    IDLE = "idle timeout"
    OPERATOR = "closed by an operator (the admin or manage.py mcp_sessions)"
    SHUTDOWN = "node shutting down"
    SERVER_ENDED = "server loop ended"
    INITIALIZE_FAILED = "initialize did not complete or was refused"
    ADOPTION_FAILED = "adoption failed"
    OTHER = "closed through the channel layer"

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_message(cls, value: object) -> CloseReason:
        """The reason another node sent with its close message (an unknown one is OTHER)."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.OTHER
