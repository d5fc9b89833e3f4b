"""A session's inbox (sessions_app/session/inbox.py): in order, with each sender's context, bounded, and closable."""

from __future__ import annotations

import asyncio
import contextvars

import anyio
import pytest

from sessions_app.session.inbox import SessionInbox

sender_name: contextvars.ContextVar[str] = contextvars.ContextVar("sender_name", default="")


async def send_as(inbox: SessionInbox[str], name: str, item: str) -> None:
    sender_name.set(name)
    await inbox.send(item)


async def test_messages_come_out_in_order_each_with_its_senders_context() -> None:
    inbox: SessionInbox[str] = SessionInbox()
    for name in ("alice", "bob"):
        await asyncio.create_task(send_as(inbox, name, f"from {name}"))

    received = []
    for _ in range(2):
        item = await inbox.receive()
        assert inbox.last_context is not None
        received.append((item, inbox.last_context[sender_name]))

    assert received == [("from alice", "alice"), ("from bob", "bob")]


async def test_a_waiting_reader_is_woken_by_the_next_message() -> None:
    inbox: SessionInbox[str] = SessionInbox()
    reader = asyncio.create_task(inbox.receive())
    await asyncio.sleep(0)
    assert not reader.done()

    await inbox.send("hello")

    assert await asyncio.wait_for(reader, 5) == "hello"


async def test_a_sender_finding_the_inbox_full_waits_for_room() -> None:
    inbox: SessionInbox[int] = SessionInbox(capacity=2)
    await inbox.send(1)
    await inbox.send(2)
    third = asyncio.create_task(inbox.send(3))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not third.done(), "a full inbox holds no more"

    assert await inbox.receive() == 1
    await asyncio.wait_for(third, 5)
    assert [await inbox.receive() for _ in range(2)] == [2, 3]


async def test_a_sender_cancelled_while_woken_leaves_the_room_to_the_next() -> None:
    inbox: SessionInbox[int] = SessionInbox(capacity=1)
    await inbox.send(1)
    first = asyncio.create_task(inbox.send(2))
    second = asyncio.create_task(inbox.send(3))
    await asyncio.sleep(0)

    assert await inbox.receive() == 1
    first.cancel()

    await asyncio.wait_for(second, 5)
    assert await inbox.receive() == 3


async def test_after_close_the_reader_gets_what_was_queued_then_the_end() -> None:
    inbox: SessionInbox[int] = SessionInbox()
    await inbox.send(1)
    inbox.close()

    assert [item async for item in inbox] == [1]
    with pytest.raises(anyio.EndOfStream):
        await inbox.receive()


async def test_close_refuses_new_and_waiting_senders() -> None:
    inbox: SessionInbox[int] = SessionInbox(capacity=1)
    await inbox.send(1)
    waiting = asyncio.create_task(inbox.send(2))
    await asyncio.sleep(0)

    inbox.close()

    with pytest.raises(anyio.ClosedResourceError):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(anyio.ClosedResourceError):
        await inbox.send(3)
