"""This node process's inbox: one Redis pub/sub channel for messages from other nodes.

Every node process subscribes to `mcp:inbox:<node id>:<boot id>`, so the
name of a session's owner in the registry (its node id and boot id) is also
the address of the process that holds it; a restarted node listens under a
new name and never receives what was meant for its previous life. A message
is a msgpack map whose "t" names its type; the modules that use the inbox
register a handler per type (`handles`). Handlers run on the inbox's task
and must not block: one that has work to do starts a task for it.

Why pub/sub: PUBLISH is one Redis command, and its answer says how many
processes received the message, so a message to a process that is gone is
known undelivered at once. A message published while its addressee is not
subscribed (Redis restarting, say) is lost; users of the inbox treat "not
delivered" as "the addressee is gone".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import msgpack
import redis.asyncio as redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]

_handlers: dict[str, Handler] = {}

# How long a failed subscription waits before the next try, at most.
MAX_RETRY_DELAY = 5.0


def handles(kind: str, handler: Handler) -> None:
    """Call `handler` with every inbox message of type `kind` (registered once, at start-up)."""
    _handlers[kind] = handler


def inbox_channel(node_id: str, boot_id: str) -> str:
    return f"mcp:inbox:{node_id}:{boot_id}"


class NodeInbox:
    def __init__(self, redis_url: str, channel: str) -> None:
        self.channel = channel
        self._redis_url = redis_url
        self._publisher: redis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None

    def start(self) -> None:
        if self._task is None:
            self._listening = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._listen_forever(), name="mcp-inbox")

    def stop_listening(self) -> None:
        """Nothing reaches this process from now on (it is leaving); it can still send."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        self.stop_listening()
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.aclose()

    async def wait_listening(self, within: float) -> bool:
        """Wait until this inbox is subscribed (messages sent to it arrive); False after `within` seconds."""
        self.start()
        assert self._listening is not None
        if self._listening.is_set():
            return True  # the common case, on every relay: no timer
        try:
            async with asyncio.timeout(within):
                await self._listening.wait()
        except TimeoutError:
            return False
        return True

    async def send(self, channel: str, message: dict[str, Any]) -> bool:
        """Publish `message` to another process's inbox: whether a process listening there received it."""
        try:
            receivers = await self._client().publish(channel, msgpack.packb(message, use_bin_type=True))
        except (RedisError, OSError) as exc:
            logger.warning("Could not send a %s message to %s: %s", message.get("t"), channel, exc)
            return False
        return int(receivers) > 0

    async def is_listening(self, channel: str) -> bool:
        """Whether any process is subscribed to `channel` (False if Redis cannot say)."""
        try:
            counts = await self._client().pubsub_numsub(channel)
        except (RedisError, OSError):
            return False
        return any(int(count) > 0 for _name, count in counts)

    def _client(self) -> redis.Redis:
        if self._publisher is None:
            # Short timeouts: a relay must not wait long on a Redis that went away.
            self._publisher = redis.Redis.from_url(self._redis_url, socket_timeout=2.0, socket_connect_timeout=1.0)
        return self._publisher

    async def _listen_forever(self) -> None:
        assert self._listening is not None
        delay = 0.0
        while True:
            # No socket timeout: a subscription is silent for as long as nobody writes.
            client = redis.Redis.from_url(self._redis_url, socket_timeout=None, socket_connect_timeout=2.0)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._listening.set()
                if delay:
                    logger.warning("The node inbox listens again on %s", self.channel)
                delay = 0.0
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._dispatch(message["data"])
            except (RedisError, OSError) as exc:
                if delay == 0.0:
                    logger.warning("The node inbox lost Redis (%s); subscribing again", exc)
                delay = min(max(delay * 2, 0.2), MAX_RETRY_DELAY)
            finally:
                self._listening.clear()
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                await client.aclose()
            await asyncio.sleep(delay)

    def _dispatch(self, data: bytes) -> None:
        try:
            message = msgpack.unpackb(data, raw=False)
            handler = _handlers[message["t"]]
        except Exception:
            logger.warning("The node inbox dropped a message it cannot read (%d bytes)", len(data))
            return
        try:
            handler(message)
        except Exception:
            logger.exception("The handler of an inbox message of type %s failed", message["t"])
