"""A session's bounded replay log for `Last-Event-ID`.

Every event a session sends on an SSE stream is recorded here with a cursor
`"<stream>.<seq>"`, so a client whose stream dropped can reopen it with GET
and `Last-Event-ID` and receive what it missed, on that stream only. The log
holds at most `max_events` events and `max_bytes` bytes per session; the
oldest events go first. A cursor whose successors were already dropped
cannot be replayed, and the client is told so rather than silently given a gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


class EventsLost(Exception):
    """The events after this cursor were dropped from the log."""


class UnknownCursor(Exception):
    """The cursor is malformed or names no stream of this session."""


@dataclass(frozen=True)
class LoggedEvent:
    stream: int
    seq: int
    frame: bytes


def event_id(stream: int, seq: int) -> str:
    return f"{stream}.{seq}"


def parse_event_id(value: str) -> tuple[int, int]:
    stream, sep, seq = value.strip().partition(".")
    # isdigit() alone admits non-ASCII digits ("\xb2" from a latin-1 header) that int() refuses.
    if not sep or not (stream + seq).isascii() or not stream.isdigit() or not seq.isdigit():
        raise UnknownCursor(value)
    try:
        return int(stream), int(seq)
    except ValueError:  # more digits than int() will parse
        raise UnknownCursor(value) from None


class EventLog:
    def __init__(self, max_events: int, max_bytes: int) -> None:
        # A list, not a deque: it holds at most MCP_EVENT_LOG_MAX_EVENTS (a few
        # hundred), and an empty deque costs 624 bytes in every idle session.
        self._events: list[LoggedEvent] = []
        self._bytes = 0
        self._max_events = max_events
        self._max_bytes = max_bytes
        # The last seq evicted per stream, to tell "nothing missed" from "lost".
        self._dropped_upto: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._events)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, stream: int, seq: int, frame: bytes) -> None:
        self._events.append(LoggedEvent(stream, seq, frame))
        self._bytes += len(frame)
        while self._events and (len(self._events) > self._max_events or self._bytes > self._max_bytes):
            dropped = self._events.pop(0)
            self._bytes -= len(dropped.frame)
            self._dropped_upto[dropped.stream] = dropped.seq

    def after(self, stream: int, seq: int) -> Iterator[bytes]:
        """Frames of `stream` logged after `seq`, oldest first; EventsLost if some are gone."""
        if self._dropped_upto.get(stream, 0) > seq:
            raise EventsLost(event_id(stream, seq))
        return iter([event.frame for event in self._events if event.stream == stream and event.seq > seq])

    def forget_stream(self, stream: int) -> None:
        self._dropped_upto.pop(stream, None)

    def clear(self) -> None:
        self._events.clear()
        self._dropped_upto.clear()
        self._bytes = 0
