"""A lean keep-alive HTTP/1.1 client on asyncio streams, so the load generator is not what is measured.

A Python httpx loop costs about 0.85 ms of CPU per call and caps any server near
600-700 req/s on these machines (FIELD-NOTES, "Where the time goes"). This client
writes pre-rendered request bytes and parses only what it needs: the status, the
headers, and a body framed by Content-Length or chunked encoding (an SSE answer is
a chunked body that ends after the JSON-RPC response).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from dataclasses import dataclass

# A response header block larger than this is not one of ours.
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # lower-case names
    body: bytes


def render_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """Request bytes ready for the wire; callers render a head once and vary only the body."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection; reopened transparently when the server asks to close.

    With `ssl`, the connection speaks HTTPS (HTTP/1.1: no ALPN is offered, so no h2).
    """

    def __init__(self, host: str, port: int, ssl: ssl_module.SSLContext | None = None) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Open the connection now (a request opens it when needed anyway)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=MAX_HEAD_BYTES, ssl=self.ssl
            )

    async def request(self, raw: bytes) -> Response:
        await self.connect()
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(raw)
        response = await read_response(self._reader)
        if response.headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return response

    def detach(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Hand the open connection over (to an event stream, say); this object forgets it."""
        if self._reader is None or self._writer is None:
            raise RuntimeError("no open connection to detach")
        pair = (self._reader, self._writer)
        self._reader = self._writer = None
        return pair

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            # The peer may already have gone away; there is nothing left to release then.
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._reader = self._writer = None


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0][9:12])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = await _read_chunked(reader)
    elif status in (202, 204, 304) or 100 <= status < 200:
        body = b""
    else:
        body = await reader.read()  # framed by the connection closing
        headers[b"connection"] = b"close"
    return Response(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            # Trailers (we send none and expect none) end with an empty line.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])
