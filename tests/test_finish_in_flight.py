"""A Django request the server cancels runs to its answer (within a grace) and leaves nothing behind."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path

from mcpsite.finish_in_flight import FinishInFlight
from mcpsite.request_threads import ReusedThreadASGIHandler
from tests.asgi_request import AsgiRequest


@dataclass
class ViewControl:
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False  # whether the view saw a cancellation


control: ViewControl | None = None


async def held_view(request: HttpRequest) -> HttpResponse:
    """Answers once the test releases it."""
    assert control is not None
    control.started.set()
    try:
        await control.release.wait()
    except asyncio.CancelledError:
        control.cancelled = True
        raise
    return HttpResponse(b"done")


# This module is the URLconf of its own tests.
urlpatterns = [path("held", held_view)]


@pytest.fixture
async def loop_errors() -> list[dict[str, Any]]:
    """What the running loop's exception handler is given ("Task exception was never retrieved", say)."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    return errors


@pytest.fixture
def view() -> ViewControl:
    global control
    control = ViewControl()
    return control


@override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost"])
async def test_a_cancelled_request_is_answered_and_leaves_no_failed_task(
    view: ViewControl, loop_errors: list[dict[str, Any]]
) -> None:
    connection = AsgiRequest("/held")
    request = connection.start(FinishInFlight(ReusedThreadASGIHandler(), grace=30.0))
    await view.started.wait()

    request.cancel()  # as daphne does when it stops
    await asyncio.sleep(0.05)
    view.release.set()
    with pytest.raises(asyncio.CancelledError):
        await request

    assert not view.cancelled
    assert connection.status == 200
    assert connection.body == b"done"
    # The connection closes as the server stops; nothing is left listening for it to fail.
    connection.inbox.put_nowait({"type": "http.disconnect"})
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    assert loop_errors == []


@override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost"])
async def test_a_request_that_outlasts_the_grace_is_given_it_and_then_cancelled(view: ViewControl) -> None:
    connection = AsgiRequest("/held")
    request = connection.start(FinishInFlight(ReusedThreadASGIHandler(), grace=1.0))
    await view.started.wait()

    request.cancel()
    await asyncio.sleep(0.2)
    assert not request.done()  # still within its grace

    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5.0):  # the grace ends it, not this
            await request
    # Ended without an answer, the view still held: the server's stop waits no longer than the grace.
    assert connection.sent == []
    view.release.set()
