"""The relay: a request for a session held by another live node is served there and answered here.

Edge side, `forward`: the node a request reached (the edge) looked the
session up (cluster/misroute.py) and found its owner alive. It publishes the
request, as it came (method, header lines, body), to the owner's inbox
(cluster/inbox.py) and writes back, piece by piece, what the owner answers.
The client going away is passed on, so a relayed stream ends at the owner
too. An owner that stops listening (its process died) is noticed within
MCP_NODE_HEARTBEAT_TTL.

Owner side, the inbox handlers: a relayed request enters through
`endpoint.serve`, the entry point of requests from a socket, with a
`RelayedWriter` that sends each `start` and `write` back to the edge's inbox.
Answers are composed by the same code either way (http/writer.py), so what
the client gets is byte for byte what the owner would have sent it directly.
A relayed request is marked so: a miss at the owner is a 404, never a
second relay.

Wire format (msgpack maps; "t" is the type, "id" the edge's relay id, "reply"
the edge's inbox):
  relay.request     {m: method, h: [[name, value], ...], b: body}
  relay.reply       {n: piece number, b: body piece, more: bool, s: status, h: header lines}
                    (s and h on the first piece only)
  relay.disconnect  the edge's client went away
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sessions_app.cluster.inbox import NodeInbox, handles, inbox_channel
from sessions_app.cluster.misroute import forget_owner, remember_owner
from sessions_app.cluster.node import this_node
from sessions_app.cluster.registry import SessionRecord
from sessions_app.http import wire
from sessions_app.http.request import McpRequest
from sessions_app.http.writer import ResponseWriter

logger = logging.getLogger(__name__)

REQUEST = "relay.request"
REPLY = "relay.reply"
DISCONNECT = "relay.disconnect"
# How long a relay waits for its own node's inbox to be subscribed.
INBOX_READY_WAIT = 2.0
# How often, at most, a relay whose answer has not started asks whether its owner still listens.
FIRST_ANSWER_CHECK = 1.0

Serve = Callable[[ResponseWriter, McpRequest, bytes], Awaitable[None]]


class Outcome(enum.Enum):
    RELAYED = "relayed"
    CLIENT_LEFT = "relayed; the client went away"
    # Nothing was answered, the caller answers. Nobody listens where the owner was:
    OWNER_GONE = "owner not listening"
    # This node cannot relay at all (its own inbox is not listening):
    UNAVAILABLE = "relay unavailable"
    # The owner got the request, then stopped listening before it answered:
    # the request may or may not have run there.
    LOST_IN_FLIGHT = "owner gone while the request was in flight"


# --- edge side ---------------------------------------------------------------------

_relay_ids = itertools.count(1)
# Replies still expected, by relay id; None in the queue: the client went away.
_waiting: dict[str, asyncio.Queue[dict[str, Any] | None]] = {}
_background: set[asyncio.Task[Any]] = set()


async def forward(writer: ResponseWriter, request: McpRequest, body: bytes, owner: SessionRecord) -> Outcome:
    """Have `owner` serve `request` and write its answer to `writer`."""
    node = this_node()
    inbox = node.inbox
    assert inbox is not None, "the relay needs the node inbox (MCP_RELAY and REDIS_URL)"
    if not await inbox.wait_listening(INBOX_READY_WAIT):
        logger.warning("Cannot relay: this node's inbox is not listening")
        return Outcome.UNAVAILABLE
    target = inbox_channel(owner.node_id, owner.boot_id)
    relay_id = str(next(_relay_ids))
    replies: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    _waiting[relay_id] = replies
    try:
        message: dict[str, Any] = {"t": REQUEST, "id": relay_id, "reply": inbox.channel, "m": request.method}
        message.update(h=request.scope_headers, b=body)
        if not await inbox.send(target, message):
            forget_owner(owner.session_id)
            return Outcome.OWNER_GONE
        writer.on_disconnect(lambda: _client_left(inbox, target, relay_id))
        return await _write_replies(writer, replies, inbox, owner, node.settings.node_heartbeat_ttl)
    finally:
        _waiting.pop(relay_id, None)


async def _write_replies(
    writer: ResponseWriter,
    replies: asyncio.Queue[dict[str, Any] | None],
    inbox: NodeInbox,
    owner: SessionRecord,
    owner_check: float,
) -> Outcome:
    target = inbox_channel(owner.node_id, owner.boot_id)
    expected = 0
    while True:
        try:
            # Until the answer starts, the owner is checked on more often: a
            # request it dropped while leaving should not keep a client waiting.
            async with asyncio.timeout(owner_check if writer.started else min(owner_check, FIRST_ANSWER_CHECK)):
                reply = await replies.get()
        except TimeoutError:
            if await inbox.is_listening(target):
                continue  # a slow handler, or a quiet stream: the owner is still there
            logger.warning("The owner of a relayed request stopped listening (%s)", target)
            forget_owner(owner.session_id)
            if not writer.started:
                return Outcome.LOST_IN_FLIGHT
            await writer.write(b"", more=False)  # the stream ends as if the owner had cut it
            return Outcome.RELAYED
        if reply is None:
            return Outcome.CLIENT_LEFT
        if reply.get("n") != expected:
            # Pieces of one answer are published one after another by one
            # task, so they arrive in order; anything else is a bug worth a loud end.
            logger.error("Relayed answer out of order (piece %s, expected %d); ending it", reply.get("n"), expected)
            if writer.started:
                await writer.write(b"", more=False)
            return Outcome.RELAYED
        expected += 1
        if "s" in reply:
            status = int(reply["s"])
            # A 404 from the owner: the session ended there. Anything else:
            # the next request for it can skip the registry.
            if status == 404:
                forget_owner(owner.session_id)
            else:
                remember_owner(owner)
            await writer.start(status, [(bytes(name), bytes(value)) for name, value in reply["h"]])
        await writer.write(bytes(reply["b"]), more=bool(reply["more"]))
        if not reply["more"]:
            return Outcome.RELAYED


def _client_left(inbox: NodeInbox, target: str, relay_id: str) -> None:
    replies = _waiting.get(relay_id)
    if replies is not None:
        replies.put_nowait(None)
    _in_background(inbox.send(target, {"t": DISCONNECT, "id": relay_id, "reply": inbox.channel}))


def _on_reply(message: dict[str, Any]) -> None:
    replies = _waiting.get(str(message.get("id")))
    if replies is not None:
        replies.put_nowait(message)


# --- owner side --------------------------------------------------------------------

# Relayed requests being served here, by (edge inbox, relay id).
_serving: dict[tuple[str, str], RelayedWriter] = {}


class RelayedWriter:
    """The ResponseWriter of a relayed request: every piece goes back to the edge node's inbox."""

    def __init__(self, inbox: NodeInbox, reply_to: str, relay_id: str) -> None:
        self.disconnected = False
        self.started = False
        self.finished = False
        self._inbox = inbox
        self._reply_to = reply_to
        self._relay_id = relay_id
        self._head: tuple[int, wire.Headers] | None = None
        self._pieces = 0
        self._on_disconnect: list[Callable[[], object]] = []

    def on_disconnect(self, callback: Callable[[], object]) -> None:
        self._on_disconnect.append(callback)

    async def start(self, status: int, headers: wire.Headers) -> None:
        # Held until the first piece of the body: they travel as one message.
        self.started = True
        self._head = (status, headers)

    async def write(self, body: bytes, *, more: bool) -> None:
        if self.disconnected or self.finished:
            return
        message: dict[str, Any] = {"t": REPLY, "id": self._relay_id, "n": self._pieces, "b": body, "more": more}
        if self._head is not None:
            message["s"], message["h"] = self._head
            self._head = None
        self._pieces += 1
        self.finished = not more
        if not await self._inbox.send(self._reply_to, message):
            self.client_left()  # the edge node is gone, and its client with it

    def client_left(self) -> None:
        if not self.disconnected:
            self.disconnected = True
            for callback in self._on_disconnect:
                callback()


def install(serve: Serve) -> None:
    """Register the relay's inbox handlers; relayed requests are served by `serve` (endpoint.serve)."""

    def on_request(message: dict[str, Any]) -> None:
        inbox = this_node().inbox
        if inbox is None:
            return
        key = (str(message["reply"]), str(message["id"]))
        writer = RelayedWriter(inbox, *key)
        lines = [(bytes(name), bytes(value)) for name, value in message["h"]]
        request = McpRequest.from_lines(str(message["m"]), lines, relayed=True)
        _serving[key] = writer
        _in_background(_serve_relayed(serve, key, writer, request, bytes(message["b"])))

    def on_disconnect(message: dict[str, Any]) -> None:
        writer = _serving.get((str(message.get("reply")), str(message.get("id"))))
        if writer is not None:
            writer.client_left()

    handles(REQUEST, on_request)
    handles(REPLY, _on_reply)
    handles(DISCONNECT, on_disconnect)


async def _serve_relayed(
    serve: Serve, key: tuple[str, str], writer: RelayedWriter, request: McpRequest, body: bytes
) -> None:
    try:
        await serve(writer, request, body)
    finally:
        _serving.pop(key, None)
        if writer.started and not writer.finished:
            await writer.write(b"", more=False)


def _in_background(work: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_background.discard)
