"""The production server: daphne, with body limits enforced while reading and Twisted's form parsing off.

    python -m mcpsite.http_server -b 0.0.0.0 -p 8000 mcpsite.asgi:application

It takes exactly daphne's arguments (`--help`) and serves the same way, with the
differences below.

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

Slow readers. daphne writes every frame to the connection as it comes, and
Twisted keeps whatever the client has not taken yet in memory, without bound:
a stream whose client stopped reading would grow for as long as the session
emits events. Here, after each piece of an SSE answer, the request looks at
how much waits unsent in the connection. Past MCP_SSE_MAX_UNSENT_BYTES, the
client gets MCP_SSE_SLOW_READER_GRACE seconds to take it below the bound, or
at least to shrink it (one large piece, a replay after a reconnect say, is
fine for a client that reads); if the backlog has not shrunk, the connection
is aborted. A backlog that passes the bound by more than the largest replay
(MCP_EVENT_LOG_MAX_BYTES) is aborted at once: no reader needs that much
buffered, and a fast producer would otherwise pile up megabytes a second
during the grace. The application sees the client gone (the session
keeps the events in its replay log), and the client resumes with
`Last-Event-ID` when it reads again.

Form parsing. Twisted's HTTP request parses the Content-Type of every POST with a
body through the `email` package (about 100 us, a tenth of a `tools/call`), and
parses form bodies into `request.args`. daphne never reads `request.args`: it
hands the raw body to the ASGI application, and Django parses forms itself. So
our requests are built with `parsePOSTFormSubmission=False`, Twisted's own
switch for this. A side effect clients can see: a POST whose multipart body is
malformed reaches the application (and gets its answer) instead of Twisted's
bare 400 page.

Per-request costs Twisted has and nobody uses: its own access line (HTTPFactory.log
formats one for every request, about 2 % of a node's CPU; daphne's access log
below is the one kept, and Traefik logs every request anyway), asking the
kernel for the connection's local address at every request (another 4 %),
building an address object for its peer (about 1 %), and asking
zope.interface whether the connection is TLS (about 1 %): a connection's
addresses and TLS never change, so each is asked once. daphne's own
handing of each request to the application goes through a Deferred and a
generator that never wait (3.5 %); `RawBodyRequest.process` builds the same
scope directly.

Answers go out at once. Twisted sends what is written to a connection on a
later turn of its loop; here each piece of an answer is handed to the kernel
as the application gives it (`send_now`), and an answer of known length
before Twisted winds its request down (`finish`), so a client reads its
answer while the node tidies up.

The periodic pass. Once a second daphne walks every request it holds, to reap
those that ended and to cancel applications that outlive their client; with
thousands of open SSE streams that walk stalled the event loop for
milliseconds every second, for nothing (`RawBodyServer.application_checker`
now passes only over the requests that ended or lost their client).

Access log. With DJANGO_LOG_FORMAT=json, daphne's access log (one line per
answered request, written straight to stdout) goes through logging instead,
on logger `mcpsite.access`, so that every line a node writes is one JSON
object (docs/operations.md).

Event loop. Twisted runs on uvloop unless MCP_EVENT_LOOP=asyncio (mcpsite/event_loop.py).

`manage.py runserver` (development) still runs stock daphne.
"""

from __future__ import annotations

from mcpsite import event_loop

if __name__ == "__main__":
    # Before daphne.server is imported: it makes its loop from the policy set then.
    event_loop.install()

import io
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from daphne.utils import HEADER_NAME_RE, INVALID_HEADER_VALUE_BYTES, parse_x_forwarded_for
from django.conf import settings
from twisted.internet import reactor, tcp
from twisted.web.http import HTTPChannel

from mcpsite.body_limits import BodyLimits
from sessions_app.conf import mcp_settings
from sessions_app.metrics import count_refusal

T = TypeVar("T")
# daphne's forbidden header-value bytes, as one search rather than a set built per value.
INVALID_HEADER_VALUE = re.compile(b"[" + re.escape(bytes(sorted(INVALID_HEADER_VALUE_BYTES))) + b"]")
logger = logging.getLogger(__name__)
slow_readers = logging.getLogger("sessions_app.slow_readers")
access_log = logging.getLogger("mcpsite.access")
# The running reactor (daphne installs it before it builds the server). Any: zope
# interfaces declare methods without `self`, which mypy misreads.
clock: Any = reactor


class RawBodyRequest(WebRequest):  # type: ignore[misc]  # daphne ships no types
    """daphne's request, leaving the body unparsed for the application and refusing one over its limit."""

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        self._body_limit: int | None = None
        self._body_received = 0
        self._refused = False
        self._unsent_check: Any = None
        self._cut_off = False
        if "getHost" not in vars(channel):
            channel.getHost = _once(channel.getHost)
            channel.getPeer = _once(channel.getPeer)
            channel.isSecure = _once(channel.isSecure)
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

    def process(self) -> None:
        """daphne's `process` for a plain HTTP request: the same checks and the same scope,
        without the Deferred and generator daphne runs for every request.

        daphne's version is an `inlineCallbacks` generator that waits on
        `maybeDeferred(create_application)`, which never waits, and checks each
        header value by building a set of its bytes: together 3.5 % of the
        instructions of a `tools/call` (callgrind). An upgrade (WebSocket)
        request keeps daphne's own path. tests/test_http_server.py holds the two
        to the same scopes and answers.
        """
        if self.requestHeaders.hasHeader(b"upgrade"):
            super().process()
            return
        try:
            self.request_start = time.time()
            scope = self._scope()
            if scope is None:
                return
            self.application_queue = self.server.create_application(self, scope)
            if self.application_queue is None or self.content.closed:
                return  # the client left while the application was being made
            size = self.server.request_buffer_size
            self.content.seek(0, 0)
            while True:
                chunk = self.content.read(size)
                more_body = len(chunk) == size
                self.application_queue.put_nowait({"type": "http.request", "body": chunk, "more_body": more_body})
                if not more_body:
                    break
        except Exception:
            logger.exception("Daphne HTTP processing error")
            self.basic_error(500, b"Internal Server Error", "Daphne HTTP processing error")

    def _scope(self) -> dict[str, Any] | None:
        """The request's ASGI scope as daphne makes it, or None once a 400 has answered a malformed request."""
        headers = []
        root_path = self.server.root_path
        for name, values in self.requestHeaders.getAllRawHeaders():
            if not HEADER_NAME_RE.fullmatch(name):
                self.basic_error(400, b"Bad Request", "Invalid header name")
                return None
            lowered = name.lower()
            for value in values:
                if INVALID_HEADER_VALUE.search(value):
                    self.basic_error(400, b"Bad Request", "Invalid header value")
                    return None
                if b"_" in name:
                    continue  # dropped, as daphne does (CVE-2015-0219)
                if lowered == b"daphne-root-path":
                    root_path = unquote(value.decode("ascii"))
                else:
                    headers.append((lowered, value))
        if hasattr(self.client, "host") and hasattr(self.client, "port"):
            self.client_addr = [str(self.client.host), self.client.port]
            self.server_addr = [str(self.host.host), self.host.port]
        self.client_scheme = "https" if self.isSecure() else "http"
        if self.server.proxy_forwarded_address_header:
            self.client_addr, self.client_scheme = parse_x_forwarded_for(
                self.requestHeaders,
                self.server.proxy_forwarded_address_header,
                self.server.proxy_forwarded_port_header,
                self.server.proxy_forwarded_proto_header,
                self.client_addr,
                self.client_scheme,
            )
        raw_path: bytes = self.path  # type: ignore[has-type]  # set by Twisted in requestReceived
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:
            self.path = b"/"
            self.basic_error(400, b"Bad Request", "Invalid characters in path")
            return None
        self.query_string = self.uri.partition(b"?")[2]
        if not self.query_string.isascii():
            self.basic_error(400, b"Bad Request", "Invalid query string")
            return None
        return {
            "type": "http",
            "http_version": self.clientproto.rpartition(b"/")[2].decode("ascii"),
            "method": self.method.decode("ascii"),
            "path": unquote(path),
            "raw_path": raw_path,
            "root_path": root_path,
            "scheme": self.client_scheme,
            "query_string": self.query_string,
            "headers": headers,
            "client": self.client_addr,
            "server": self.server_addr,
        }

    def handle_reply(self, message: dict[str, Any]) -> None:
        # Taken first: the last piece of an answer finishes the request, which lets go of its channel.
        transport = getattr(getattr(self, "channel", None), "transport", None)
        super().handle_reply(message)
        if message.get("type") == "http.response.body":
            send_now(transport)
            if message.get("more_body"):
                self._watch_unsent()

    def finish(self) -> None:
        # An answer of known length is whole once written: it leaves before
        # Twisted's bookkeeping for the finished request, not after it. (A
        # chunked one still needs its last chunk, which finish writes.)
        if self.startedWriting and not self.chunked:
            send_now(getattr(self.channel, "transport", None))
        super().finish()

    def _watch_unsent(self) -> None:
        """An SSE answer with more than the bound waiting unsent gets SLOW_READER_GRACE to take it;
        one past the ceiling is ended at once."""
        factory = getattr(self.channel, "factory", None)
        if self._cut_off or not isinstance(factory, RawBodyHTTPFactory) or not self._is_event_stream():
            return
        unsent = unsent_bytes(self.channel.transport)
        if unsent > factory.unsent_ceiling:
            self._end_slow_reader(unsent, f"past the ceiling of {factory.unsent_ceiling}")
        elif unsent > factory.max_unsent_bytes and self._unsent_check is None:
            self._unsent_check = clock.callLater(factory.slow_reader_grace, self._end_if_still_unread, factory, unsent)

    def _end_if_still_unread(self, factory: RawBodyHTTPFactory, earlier: int) -> None:
        """Abort unless the client took enough to get under the bound, or at least shrank the backlog."""
        self._unsent_check = None
        if self.finished or self._cut_off or getattr(self.channel, "transport", None) is None:
            return
        unsent = unsent_bytes(self.channel.transport)
        if unsent <= factory.max_unsent_bytes or unsent < earlier:
            self._watch_unsent()  # taking it, if slowly: look again
            return
        self._end_slow_reader(unsent, f"after {factory.slow_reader_grace:.0f} s (bound {factory.max_unsent_bytes})")

    def _end_slow_reader(self, unsent: int, why: str) -> None:
        self._cut_off = True
        if self._unsent_check is not None:
            self._unsent_check.cancel()
            self._unsent_check = None
        slow_readers.warning("Ended a stream whose client stopped reading (%d bytes unsent %s)", unsent, why)
        self.channel.transport.abortConnection()

    def _is_event_stream(self) -> bool:
        content_type = self.responseHeaders.getRawHeaders(b"content-type") or [b""]
        return bool(content_type[0].startswith(b"text/event-stream"))

    def _refuse(self) -> None:
        """Answer 413 and close: `loseConnection` stops reading at once and closes once the answer is out."""
        self._refused = True
        count_refusal(413)
        self.content.close()
        self.content = io.BytesIO()
        self.channel.transport.write(self._limits.refusal(self._target))
        self.channel.loseConnection()


def send_now(transport: Any) -> None:
    """Hand what a connection holds unsent to the kernel now, rather than on a later turn of the loop.

    Twisted's `write` only buffers and asks the reactor to say when the socket
    is writable, so an answer went out after every callback already queued:
    for a handshake-era `tools/call`, the SDK's and our own winding down after
    the answer. Sent at once, the client reads its answer while that work runs,
    and the node saves a turn of its loop per request. A connection that is
    closing is left to the reactor, which closes it once the rest is out; if
    the send fails, the reactor sees the error on its next turn and drops
    the connection as usual.
    """
    if (
        isinstance(transport, tcp.Connection)
        and transport.connected
        and not transport.disconnecting
        and not getattr(transport, "_writeDisconnecting", False)
        and unsent_bytes(transport)
    ):
        transport.doWrite()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated


def unsent_bytes(transport: Any) -> int:
    """Bytes written to a TCP connection and not yet taken by the kernel (Twisted's FileDescriptor buffer)."""
    buffered = getattr(transport, "dataBuffer", b"")
    return len(buffered) - int(getattr(transport, "offset", 0)) + int(getattr(transport, "_tempDataLen", 0))


def _once(read: Callable[[], T]) -> Callable[[], T]:
    """`read`, asked once: for what Twisted asks again at every request on a connection
    and cannot change while it lasts (its two addresses, whether it is TLS)."""
    known: list[T] = []

    def cached() -> T:
        if not known:
            known.append(read())
        return known[0]

    return cached


class RawBodyHTTPFactory(HTTPFactory):  # type: ignore[misc]
    def __init__(self, server: Any) -> None:
        super().__init__(server)
        # Django is set up by now: daphne imports the application before it builds the server.
        self.body_limits = BodyLimits.from_settings()
        self.max_unsent_bytes = mcp_settings().sse_max_unsent_bytes
        self.slow_reader_grace = mcp_settings().sse_slow_reader_grace
        # The most a stream may hold unsent, grace or not: the bound plus the largest replay.
        self.unsent_ceiling = self.max_unsent_bytes + mcp_settings().event_log_max_bytes

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = RawBodyRequest
        return protocol

    def log(self, request: Any) -> None:
        """Not Twisted's own access line: daphne's (its verbosity, or the JSON access log) is the one we keep."""


def log_access(protocol: str, action: str, details: dict[str, Any]) -> None:
    """daphne's access log entry for an answered HTTP request, as a log record (the JSON log format).

    The fields daphne gives go under `http`; the message reads like its own line, without the date.
    """
    if protocol != "http" or action != "complete":
        # Websocket events: nothing here serves websockets.
        return
    http = {
        "client": details.get("client") or "-",
        "method": details.get("method"),
        "path": details.get("path"),
        "status": details.get("status"),
        "bytes": details.get("size"),
        "seconds": details.get("time_taken"),
    }
    access_log.info(
        '%s "%s %s" %s %s',
        http["client"],
        http["method"],
        http["path"],
        http["status"],
        http["bytes"] or "-",
        extra={"http": http},
    )


class RawBodyServer(Server):  # type: ignore[misc]
    """daphne's server, building its HTTP connections with `RawBodyHTTPFactory`,
    and passing over its requests once a second without walking the open streams.

    `Server.run()` creates its factory inline (`self.http_factory =
    HTTPFactory(self)`) and offers no hook to choose the class; this attribute
    is the one seam, so the assignment is turned into ours here.
    """

    _http_factory: HTTPFactory | None = None
    # daphne's table of the requests it holds, made by run(): request -> its application and times.
    connections: dict[Any, dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # daphne builds the server once the application (and so the settings) is loaded.
        if kwargs.get("action_logger") is not None and settings.LOG_FORMAT == "json":
            kwargs["action_logger"] = log_access
        super().__init__(*args, **kwargs)
        # Requests whose client left or whose application ended since the last
        # pass of `application_checker`: the only ones it has anything to do for.
        self._eventful: set[Any] = set()

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        queue = super().create_application(protocol, scope)
        instance = self.connections.get(protocol, {}).get("application_instance")
        if instance is not None:
            instance.add_done_callback(lambda _: self._eventful.add(protocol))
        return queue

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self._eventful.add(protocol)

    def application_checker(self) -> None:
        """daphne's pass, over the requests something happened to since the last one.

        Once a second daphne walks every request it holds, to reap the ended
        and to cancel applications that outlive their client by
        `application_close_timeout`. With thousands of SSE streams open the
        walk stalls the event loop for milliseconds, and does nothing for a
        stream that is still going. Here daphne's own pass runs over the
        requests that disconnected or whose application ended (everything it
        acts on), its removals are applied to the whole table, and a request
        it must look at again (disconnected, its application not yet ended)
        stays on the list.
        """
        eventful, self._eventful = self._eventful, set()
        everything = self.connections
        self.connections = {protocol: everything[protocol] for protocol in eventful if protocol in everything}
        try:
            super().application_checker()
        finally:
            looked_at, self.connections = self.connections, everything
        for protocol in eventful:
            details = looked_at.get(protocol)
            if details is None:
                everything.pop(protocol, None)
            elif "disconnected" in details and "application_instance" in details:
                self._eventful.add(protocol)

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
