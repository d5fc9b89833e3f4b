"""The production server: daphne, with body limits enforced while reading and Twisted's form parsing off.

    python -m mcpsite.http_server -b 0.0.0.0 -p 8000 mcpsite.asgi:application

It takes exactly daphne's arguments (`--help`) and serves the same way, with two
differences.

Body limits (mcpsite/body_limits.py). Twisted reads a request's whole body
(into a temporary file past 100 kB) before daphne hands any of it to the
application, and daphne then queues all of it in memory at once: a limit
checked in the application comes after the upload. Here the request checks
as the body arrives: a `Content-Length` over the limit is refused before a
byte of the body is read, and a chunked body as soon as its running total
passes the limit. The refusal is a 413 written straight to the connection,
which then closes without reading further; the application never sees the
request. Only HTTP/1.x connections are checked this way (daphne speaks
HTTP/2 only on TLS endpoints, which our nodes do not use); anything else
keeps the application's late check.

Form parsing. Twisted's HTTP request parses the Content-Type of every POST with a
body through the `email` package (about 100 us, a tenth of a `tools/call`), and
parses form bodies into `request.args`. daphne never reads `request.args`: it
hands the raw body to the ASGI application, and Django parses forms itself. So
our requests are built with `parsePOSTFormSubmission=False`, Twisted's own
switch for this. A side effect clients can see: a POST whose multipart body is
malformed reaches the application (and gets its answer) instead of Twisted's
bare 400 page.

`manage.py runserver` (development) still runs stock daphne.
"""

from __future__ import annotations

import io
from typing import Any, cast

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from twisted.web.http import HTTPChannel

from mcpsite.body_limits import BodyLimits


class RawBodyRequest(WebRequest):  # type: ignore[misc]  # daphne ships no types
    """daphne's request, leaving the body unparsed for the application and refusing one over its limit."""

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        self._body_limit: int | None = None
        self._body_received = 0
        self._refused = False
        super().__init__(channel, *args, **kwargs)

    # Twisted's channel calls these three in order: gotLength once the headers
    # are in (length None for a chunked body), handleContentChunk for each
    # piece of decoded body, requestReceived once the body is complete.

    def gotLength(self, length: int | None) -> None:
        factory = getattr(self.channel, "factory", None)
        if isinstance(self.channel, HTTPChannel) and isinstance(factory, RawBodyHTTPFactory):
            # The request line is parsed (the channel keeps its target until
            # requestReceived); the body has not been read.
            # (Twisted's own annotation of `_path` is wrong: it holds the target's bytes.)
            self._target = cast(bytes, self.channel._path)
            self._limits = factory.body_limits
            self._body_limit = self._limits.for_target(self._target)
        if self._body_limit is not None and length is not None and length > self._body_limit:
            # No temporary file for a body that will not be read, and no
            # "100 Continue" inviting the client to send it.
            self.content = io.BytesIO()
            self.requestHeaders.removeHeader(b"expect")
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            # What was already read with the last piece, before the connection closed.
            return
        self._body_received += len(data)
        if self._body_limit is not None and self._body_received > self._body_limit:
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        """Answer 413 and close: `loseConnection` stops reading at once and closes once the answer is out."""
        self._refused = True
        self.content.close()
        self.content = io.BytesIO()
        self.channel.transport.write(self._limits.refusal(self._target))
        self.channel.loseConnection()


class RawBodyHTTPFactory(HTTPFactory):  # type: ignore[misc]
    def __init__(self, server: Any) -> None:
        super().__init__(server)
        # Django is set up by now: daphne imports the application before it builds the server.
        self.body_limits = BodyLimits.from_settings()

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = RawBodyRequest
        return protocol


class RawBodyServer(Server):  # type: ignore[misc]
    """daphne's server, building its HTTP connections with `RawBodyHTTPFactory`.

    `Server.run()` creates its factory inline (`self.http_factory =
    HTTPFactory(self)`) and offers no hook to choose the class; this attribute
    is the one seam, so the assignment is turned into ours here.
    """

    _http_factory: HTTPFactory | None = None

    @property
    def http_factory(self) -> HTTPFactory | None:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        self._http_factory = factory if isinstance(factory, RawBodyHTTPFactory) else RawBodyHTTPFactory(self)


class RawBodyCommandLineInterface(CommandLineInterface):  # type: ignore[misc]
    server_class = RawBodyServer


if __name__ == "__main__":
    RawBodyCommandLineInterface.entrypoint()
