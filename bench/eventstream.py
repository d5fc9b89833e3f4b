"""An open SSE response (a standalone GET stream) read on raw asyncio streams, event by event.

Each event is timestamped (time.perf_counter()) when the chunk that completes it
is read off the socket, so a background reader gives arrival times that do not
depend on when the harness gets round to looking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from .messages import session_headers
from .rawhttp import MAX_HEAD_BYTES, render_request

# An SSE event larger than this is not one of ours.
MAX_EVENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Event:
    arrived: float  # time.perf_counter() when it was read
    fields: dict[str, str]

    def message(self) -> dict[str, Any] | None:
        """The JSON-RPC message in its data field, if any."""
        data = self.fields.get("data")
        if not data:
            return None
        parsed = json.loads(data)
        return parsed if isinstance(parsed, dict) else None


def standalone_get(host: str, session_id: str) -> bytes:
    """The GET that opens a handshake-era session's standalone stream."""
    return render_request("GET", "/mcp", host, {**session_headers(session_id), "Accept": "text/event-stream"})


class EventStream:
    """One SSE response on its own connection (or on a keep-alive connection handed over to it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._buffer = b""
        self._events: list[Event] = []

    @classmethod
    async def open(cls, host: str, port: int, raw: bytes) -> EventStream:
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD_BYTES)
        stream = cls(reader, writer)
        try:
            await stream.start(raw)
        except BaseException:
            await stream.close()
            raise
        return stream

    async def start(self, raw: bytes) -> None:
        """Send the request and read the head: a 200 chunked text/event-stream, or an error."""
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        status = int(status_line[9:12])
        if status != 200 or b"text/event-stream" not in rest.lower():
            raise RuntimeError(f"stream: expected HTTP 200 text/event-stream, got {head[:300]!r}")
        if b"transfer-encoding: chunked" not in rest.lower():
            raise RuntimeError(f"stream: expected a chunked body, got {head[:300]!r}")

    async def next_event(self) -> Event:
        """The next event (keep-alive comments skipped); EOFError when the stream ends."""
        while not self._events:
            await self._read_chunk()
        return self._events.pop(0)

    async def read_raw(self, size: int = 65536) -> bytes:
        """What the socket has next, chunk framing and all (to count markers cheaply); EOFError at its end.

        Not to be mixed with `next_event` on one stream.
        """
        data = await self._reader.read(size)
        if not data:
            raise EOFError("the server closed the connection")
        return data

    async def _read_chunk(self) -> None:
        size_line = await self._reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            raise EOFError("the server ended the stream")
        self._buffer += (await self._reader.readexactly(size + 2))[:-2]
        arrived = time.perf_counter()
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise RuntimeError("stream: an event larger than 1 MiB")
        *complete, self._buffer = self._buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        for block in complete:
            fields: dict[str, str] = {}
            for line in block.decode().split("\n"):
                if line and not line.startswith(":"):
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    fields[name] = f"{fields[name]}\n{value}" if name == "data" and name in fields else value
            if fields:
                self._events.append(Event(arrived, fields))

    async def close(self) -> None:
        self._writer.close()
        # The peer may already have gone away; there is nothing left to release then.
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
