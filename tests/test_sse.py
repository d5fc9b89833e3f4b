"""One SSE response's outbox: frames queued without waiting, ended by finish or abort, bounded."""

from __future__ import annotations

import asyncio

from sessions_app.http.sse import SseConnection
from sessions_app.http.wire import KEEPALIVE_FRAME

# Long enough that no keep-alive appears in tests that do not ask for one.
QUIET = 60.0


async def drain(connection: SseConnection, keepalive: float = QUIET) -> list[bytes]:
    """Every non-empty piece frames() yields until the end, bounded so a bug fails rather than hangs."""
    async with asyncio.timeout(5):
        return [frames async for frames, _last in connection.frames(keepalive) if frames]


async def test_a_new_connection_is_open_and_empty() -> None:
    connection = SseConnection(max_pending=4)

    assert connection.open
    assert not connection.aborted
    assert not connection.has_frames


async def test_frames_queued_together_leave_in_order_as_one_write() -> None:
    connection = SseConnection(max_pending=4)

    assert connection.push(b"one")
    assert connection.push(b"two")
    assert connection.has_frames
    connection.finish()

    assert await drain(connection) == [b"onetwo"]
    assert not connection.has_frames


async def test_the_piece_that_ends_the_response_says_so() -> None:
    connection = SseConnection(max_pending=4)
    connection.push(b"one")
    connection.finish(b"end")

    async with asyncio.timeout(5):
        assert [piece async for piece in connection.frames(QUIET)] == [(b"oneend", True)]


async def test_an_end_after_the_last_frame_left_is_an_empty_last_piece() -> None:
    connection = SseConnection(max_pending=4)
    connection.push(b"one")
    frames = connection.frames(QUIET)

    async with asyncio.timeout(5):
        assert await anext(frames) == (b"one", False)
        connection.finish()
        assert [piece async for piece in frames] == [(b"", True)]


async def test_finish_delivers_everything_queued_plus_the_last_frame() -> None:
    connection = SseConnection(max_pending=4)
    connection.push(b"one")
    connection.push(b"two")

    connection.finish(b"last")

    assert not connection.open
    assert not connection.aborted
    assert await drain(connection) == [b"onetwolast"]


async def test_finish_may_add_its_last_frame_to_a_full_outbox() -> None:
    connection = SseConnection(max_pending=2)
    connection.push(b"one")
    connection.push(b"two")

    connection.finish(b"last")

    assert await drain(connection) == [b"onetwolast"]


async def test_finish_without_a_last_frame_ends_after_the_queue() -> None:
    connection = SseConnection(max_pending=4)
    connection.finish()

    assert await drain(connection) == []


async def test_push_after_finish_is_refused() -> None:
    connection = SseConnection(max_pending=4)
    connection.finish(b"last")

    assert not connection.push(b"late")
    assert await drain(connection) == [b"last"]


async def test_a_second_finish_changes_nothing() -> None:
    connection = SseConnection(max_pending=4)
    connection.finish(b"first end")
    connection.finish(b"second end")

    assert await drain(connection) == [b"first end"]


async def test_abort_drops_queued_frames() -> None:
    connection = SseConnection(max_pending=4)
    connection.push(b"one")
    connection.push(b"two")

    connection.abort()

    assert not connection.open
    assert connection.aborted
    assert not connection.has_frames
    assert not connection.push(b"late")
    assert await drain(connection) == []


async def test_abort_after_finish_drops_the_last_frame_too() -> None:
    connection = SseConnection(max_pending=4)
    connection.push(b"one")
    connection.finish(b"last")

    connection.abort()

    assert connection.aborted
    assert await drain(connection) == []


async def test_overflow_past_max_pending_aborts_and_reports_false() -> None:
    connection = SseConnection(max_pending=3)
    assert [connection.push(frame) for frame in (b"1", b"2", b"3")] == [True, True, True]

    assert not connection.push(b"4")

    assert connection.aborted
    assert not connection.open
    assert not connection.push(b"5")
    assert await drain(connection) == []


async def test_a_reader_that_keeps_up_never_overflows() -> None:
    connection = SseConnection(max_pending=2)
    received: list[bytes] = []
    frames = connection.frames(QUIET)

    async with asyncio.timeout(5):
        for number in range(10):
            frame = str(number).encode()
            assert connection.push(frame)
            received.append((await anext(frames))[0])
        connection.finish()
        received.extend([piece async for piece, _last in frames if piece])

    assert received == [str(number).encode() for number in range(10)]
    assert not connection.aborted


async def test_frames_waits_for_frames_pushed_later() -> None:
    connection = SseConnection(max_pending=4)
    reader = asyncio.create_task(drain(connection))
    await asyncio.sleep(0)  # let the reader start waiting on an empty outbox

    connection.push(b"one")
    connection.push(b"two")
    connection.finish(b"last")

    assert await reader == [b"onetwolast"]


async def test_abort_wakes_a_waiting_reader() -> None:
    connection = SseConnection(max_pending=4)
    reader = asyncio.create_task(drain(connection))
    await asyncio.sleep(0)

    connection.abort()

    assert await reader == []


async def test_keepalive_frame_is_sent_during_silence() -> None:
    connection = SseConnection(max_pending=4)
    frames = connection.frames(keepalive=0.01)

    async with asyncio.timeout(5):
        assert await anext(frames) == (KEEPALIVE_FRAME, False)
        connection.push(b"one")
        assert await anext(frames) == (b"one", False)
        connection.finish()
        rest = [piece async for piece, _last in frames if piece]

    # Keep-alives may have slipped in while we pushed; nothing else may.
    assert set(rest) <= {KEEPALIVE_FRAME}


async def test_wait_for_output_reports_whether_anything_came() -> None:
    connection = SseConnection(max_pending=4)

    assert not await connection.wait_for_output(0.01)
    connection.push(b"one")
    assert await connection.wait_for_output(0.01)


async def test_wait_for_output_returns_true_once_the_connection_ends() -> None:
    connection = SseConnection(max_pending=4)
    connection.finish()

    assert await connection.wait_for_output(0.01)


async def test_wait_for_end_lets_frames_queue_until_the_end() -> None:
    connection = SseConnection(max_pending=4)
    waiter = asyncio.create_task(connection.wait_for_end(5))
    await asyncio.sleep(0)

    connection.push(b"one")
    await asyncio.sleep(0)
    assert not waiter.done()  # a frame is not the end
    connection.finish(b"last")

    assert await waiter
    assert await drain(connection) == [b"onelast"]


async def test_wait_for_end_gives_up_after_its_time() -> None:
    connection = SseConnection(max_pending=4)
    connection.push(b"one")

    assert not await connection.wait_for_end(0.01)
    assert connection.open
    assert connection.has_frames


async def test_abort_ends_a_wait_for_end() -> None:
    connection = SseConnection(max_pending=4)
    waiter = asyncio.create_task(connection.wait_for_end(5))
    await asyncio.sleep(0)

    connection.abort()

    assert await waiter
