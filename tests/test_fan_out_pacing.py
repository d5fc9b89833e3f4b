"""A fan-out to many local listeners hands the event loop back between slices.

Without pacing, listeners that never wait run back to back and nothing else on
the loop runs until the last one is done: a ticking task sees no tick between
the first listener and the last. With pacing it ticks between every slice.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from mcp.server.subscriptions import ResourceUpdated, ServerEvent

from sessions_app.cluster.pacing import SLICE, Pace, PacedSubscriptionBus

LISTENERS = 8 * SLICE


@pytest.fixture
async def ticks() -> AsyncIterator[list[int]]:
    """A task that counts its turns on the loop for as long as the test runs."""
    counter = [0]

    async def tick() -> None:
        while True:
            counter[0] += 1
            await asyncio.sleep(0)

    task = asyncio.get_running_loop().create_task(tick())
    await asyncio.sleep(0)
    yield counter
    task.cancel()


async def test_a_paced_fan_out_lets_other_tasks_run_between_slices(ticks: list[int]) -> None:
    seen: list[int] = []
    pace = Pace()
    for _ in range(LISTENERS):
        seen.append(ticks[0])  # a delivery that never waits
        await pace.step()
    within_slices = [seen[start : start + SLICE] for start in range(0, LISTENERS, SLICE)]
    # Within a slice nothing else ran; between slices the other task did, every time.
    assert all(len(set(piece)) == 1 for piece in within_slices)
    firsts = [piece[0] for piece in within_slices]
    assert all(later > earlier for earlier, later in itertools.pairwise(firsts))


async def test_the_listen_bus_reaches_every_listener_and_paces_them(ticks: list[int]) -> None:
    bus = PacedSubscriptionBus()
    seen: list[tuple[int, ServerEvent]] = []
    for _ in range(LISTENERS):
        bus.subscribe(lambda event: seen.append((ticks[0], event)))
    event = ResourceUpdated(uri="adr://1")
    await bus.publish(event)
    assert [delivered for _, delivered in seen] == [event] * LISTENERS
    assert len({tick for tick, _ in seen}) >= LISTENERS // SLICE


async def test_the_listen_bus_skips_a_failing_listener_and_forgets_unsubscribed_ones() -> None:
    bus = PacedSubscriptionBus()
    heard: list[str] = []

    def failing(event: ServerEvent) -> None:
        raise RuntimeError("stream gone")

    bus.subscribe(failing)
    stop = bus.subscribe(lambda event: heard.append("first"))
    bus.subscribe(lambda event: heard.append("second"))
    await bus.publish(ResourceUpdated(uri="adr://1"))
    stop()
    stop()  # idempotent, as the SDK's streams expect
    await bus.publish(ResourceUpdated(uri="adr://1"))
    assert heard == ["first", "second", "second"]
