"""The production server: daphne, with Twisted's form parsing switched off.

    python -m mcpsite.http_server -b 0.0.0.0 -p 8000 mcpsite.asgi:application

It takes exactly daphne's arguments (`--help`) and serves the same way, with one
difference. Twisted's HTTP request parses the Content-Type of every POST with a
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

from typing import Any

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server


class RawBodyRequest(WebRequest):  # type: ignore[misc]  # daphne ships no types
    """daphne's request, leaving the body unparsed for the application."""

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(channel, *args, **kwargs)


class RawBodyHTTPFactory(HTTPFactory):  # type: ignore[misc]
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
