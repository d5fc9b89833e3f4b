"""Registry writes, off the request path, retried until the store takes them.

Session creation and close enqueue a write here instead of waiting for Redis,
so a node keeps creating and serving sessions while Redis is down; the
registry catches up once it is back. (An `initialize` answer waits for its
session's first write while the store is reachable: session/manager.py.)
Writes for one session are applied in order, and a newer write for a session
replaces one still waiting (a session closed before its record was ever
written costs one harmless delete).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

from sessions_app.cluster.registry import RegistryUnavailable, SessionRecord, SessionRegistry

logger = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class Write:
    session_id: str
    record: SessionRecord | None  # None: delete


class RegistryWriter:
    def __init__(self, registry: SessionRegistry) -> None:
        self.registry = registry
        self._pending: OrderedDict[str, Write] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._settled = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        # Attempts that failed in a row: above 0, the store is unreachable right now.
        self._failures = 0

    def _bind_to_running_loop(self) -> None:
        """asyncio primitives belong to one loop. A server has one for its life,
        but a management command or the admin under a test client runs each
        `async_to_sync` call on a new loop: rebind then, keeping pending writes."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._settled = asyncio.Condition()
            self._task = None
        if self._pending and (self._task is None or self._task.done()):
            self._wakeup.set()
            self._task = loop.create_task(self._apply_forever(), name="mcp-registry-writer")

    @property
    def backlog(self) -> int:
        return len(self._pending)

    @property
    def store_unreachable(self) -> bool:
        """Whether the last attempt to write failed (and nothing has been written since)."""
        return self._failures > 0

    def add(self, record: SessionRecord) -> None:
        self._enqueue(Write(record.session_id, record))

    def remove(self, session_id: str) -> None:
        self._enqueue(Write(session_id, None))

    async def settled(self, session_id: str, within: float) -> bool:
        """Wait until no write for `session_id` is pending; False if `within` seconds passed first."""
        self._bind_to_running_loop()
        try:
            async with asyncio.timeout(within), self._settled:
                await self._settled.wait_for(lambda: session_id not in self._pending)
        except TimeoutError:
            return False
        return True

    async def drain(self, within: float) -> bool:
        """Wait until every pending write is applied; False if `within` seconds passed first."""
        self._bind_to_running_loop()
        try:
            async with asyncio.timeout(within), self._settled:
                await self._settled.wait_for(lambda: not self._pending)
        except TimeoutError:
            return False
        return True

    def _enqueue(self, write: Write) -> None:
        self._pending.pop(write.session_id, None)
        self._pending[write.session_id] = write
        self._bind_to_running_loop()
        self._wakeup.set()

    async def _apply_forever(self) -> None:
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            write = next(iter(self._pending.values()))
            try:
                if write.record is None:
                    await self.registry.aremove(write.session_id)
                else:
                    await self.registry.aadd(write.record)
            except RegistryUnavailable as exc:
                delay = RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS) - 1)]
                if self._failures == 0:
                    logger.warning("Session registry unavailable (%s); %d writes wait, retrying", exc, self.backlog)
                self._failures += 1
                await asyncio.sleep(delay)
                continue
            if self._failures:
                logger.warning("Session registry reachable again after %d failed attempts", self._failures)
                self._failures = 0
            # A newer write for this session may have replaced this one meanwhile.
            if self._pending.get(write.session_id) is write:
                del self._pending[write.session_id]
                async with self._settled:
                    self._settled.notify_all()
