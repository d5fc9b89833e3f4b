"""Pacing a fan-out so it shares the event loop with the requests on the node.

Telling 200 local subscribers of one change is 200 SSE writes. Done in one go
they fill the event loop's ready queue, and every other request waits behind
all of them at each of its steps (an unrelated `tools/call` went from 3 ms to
100 ms under a change flood). So a fan-out runs in slices: after each one it
hands the loop back and then rests as long as the slice kept the loop busy,
so it takes at most about half of the loop while others want it.

Slowing delivery loses nothing: the change feed merges the changes that arrive
meanwhile into one per resource (change_feed.py), and a subscriber is always
told after the last change to what it watches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mcp.server.subscriptions import ServerEvent

logger = logging.getLogger(__name__)

# Deliveries between rests. Smaller slices cost the other requests less and
# delay the last subscriber more. p99 of an unrelated call under a flood, in
# 300-call runs of benchmark scenario 11: 15-18 ms at 4, 17-22 ms at 8, 13 ms
# at 2, with 7-14 ms for the flood alone.
SLICE = 4
# The share of the loop a fan-out may take while others want it: it rests as long as it worked.
DUTY = 0.5
REST_PER_BUSY = (1 - DUTY) / DUTY


class Pace:
    """One fan-out's pacing: `await pace.step()` after each delivery."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = 0
        self._slice_started = self._loop.time()

    async def step(self) -> None:
        self._done += 1
        if self._done % SLICE:
            return
        # The writes this slice queued run in their own tasks: let them, and count their time too.
        await asyncio.sleep(0)
        busy = self._loop.time() - self._slice_started
        # A timer, even a short one, lets the loop poll for new requests before the next slice.
        await asyncio.sleep(busy * REST_PER_BUSY)
        self._slice_started = self._loop.time()


class PacedSubscriptionBus:
    """The SDK's `SubscriptionBus` for this process's 2026-07-28 listen streams, its fan-out paced.

    Each listener only queues the event for its stream; the stream's task then
    writes it, so waking every stream at once would stall the loop as above.
    """

    def __init__(self) -> None:
        # Keyed by a token of its own: one callable may be subscribed twice.
        self._listeners: dict[object, Callable[[ServerEvent], None]] = {}

    async def publish(self, event: ServerEvent) -> None:
        pace = Pace()
        for listener in list(self._listeners.values()):
            try:
                listener(event)
            except Exception:
                logger.exception("A listen stream refused %s", event)
            await pace.step()

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        token = object()
        self._listeners[token] = listener

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe
