"""Django's requests reuse their synchronous threads, and still never share one while they run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from mcpsite.request_threads import RequestThread, RequestThreads, ReusedThreadASGIHandler
from tests.asgi_request import AsgiRequest


def thread_view(request: HttpRequest) -> HttpResponse:
    """A synchronous view: names the thread Django ran it on."""
    return HttpResponse(str(threading.get_ident()).encode())


@dataclass
class Hold:
    """What `held_view` reports and waits for, across the loop's thread and the request's."""

    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


holds: dict[str, Hold] = {}


def held_view(request: HttpRequest, name: str) -> HttpResponse:
    """A synchronous view that keeps its thread busy until the test releases it."""
    hold = holds[name]
    hold.thread = threading.current_thread()
    hold.started.set()
    assert hold.release.wait(30.0)
    return HttpResponse(str(threading.get_ident()).encode())


class ThreadRecorder(MiddlewareMixin):
    """Notes the thread Django runs a middleware hook on."""

    def process_request(self, request: HttpRequest) -> None:
        request.middleware_thread = threading.get_ident()  # type: ignore[attr-defined]


async def async_view(request: HttpRequest) -> HttpResponse:
    """An asynchronous view (as GraphQL's): where middleware and its own synchronous work ran."""
    own_work = await sync_to_async(threading.get_ident)()
    return HttpResponse(f"{request.middleware_thread} {own_work}".encode())  # type: ignore[attr-defined]


# This module is the URLconf of its own tests.
urlpatterns = [path("thread", thread_view), path("held/<str:name>", held_view), path("async", async_view)]


@pytest.fixture(autouse=True)
def urlconf() -> Iterator[None]:
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost"]):
        yield
    for hold in holds.values():
        hold.release.set()
    holds.clear()


def answered_by(request: AsgiRequest) -> int:
    """The thread the view ran on, from the answer."""
    assert request.status == 200, request.sent
    return int(request.body)


async def served(app: ReusedThreadASGIHandler, path: str) -> AsgiRequest:
    request = AsgiRequest(path)
    await request.start(app)
    return request


async def held(app: ReusedThreadASGIHandler, name: str) -> tuple[AsgiRequest, asyncio.Task[None], Hold]:
    """A request whose view has started and is holding its thread."""
    hold = holds[name] = Hold()
    request = AsgiRequest(f"/held/{name}")
    task = request.start(app)
    assert await asyncio.to_thread(hold.started.wait, 10.0)
    return request, task, hold


async def thread_ended(thread: threading.Thread | None) -> bool:
    # The Thread, not its ident: a thread started after this one ends may be given the same ident.
    assert thread is not None
    for _ in range(200):
        if not thread.is_alive():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_one_request_after_another_runs_on_the_same_kept_thread() -> None:
    app = ReusedThreadASGIHandler(RequestThreads(keep=4))

    first = answered_by(await served(app, "/thread"))
    second = answered_by(await served(app, "/thread"))

    assert first == second
    assert first != threading.get_ident()  # never the loop's own thread
    assert len(app.threads) == 1


async def test_requests_running_at_once_never_share_a_thread() -> None:
    app = ReusedThreadASGIHandler(RequestThreads(keep=4))
    kept = answered_by(await served(app, "/thread"))

    slow, slow_task, hold = await held(app, "slow")
    # Answered while the slow request still holds its thread: not queued behind it.
    quick = await asyncio.wait_for(served(app, "/thread"), 10.0)

    assert hold.thread is not None
    assert hold.thread.ident == kept  # the slow request took the kept thread
    assert answered_by(quick) != kept
    hold.release.set()
    await slow_task
    assert answered_by(slow) == kept
    assert len(app.threads) == 2


async def test_a_thread_still_busy_when_its_request_ends_is_not_handed_to_the_next() -> None:
    app = ReusedThreadASGIHandler(RequestThreads(keep=4))
    _, abandoned, hold = await held(app, "abandoned")

    # The server gives up on the request (it stops, and the request outlived its grace)
    # while the view still runs on the request's thread.
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert len(app.threads) == 0

    next_request = await asyncio.wait_for(served(app, "/thread"), 10.0)
    assert hold.thread is not None
    assert answered_by(next_request) != hold.thread.ident
    hold.release.set()
    assert await thread_ended(hold.thread)  # it exits once its work is done
    assert len(app.threads) == 1


async def test_no_more_idle_threads_are_kept_than_asked() -> None:
    app = ReusedThreadASGIHandler(RequestThreads(keep=2))
    running = [await held(app, name) for name in ("a", "b", "c")]

    for _, _, hold in running:
        hold.release.set()
    await asyncio.gather(*(task for _, task, _ in running))

    assert len(app.threads) == 2
    threads = [hold.thread for _, _, hold in running if hold.thread is not None]
    for _ in range(200):
        if not all(thread.is_alive() for thread in threads):
            break
        await asyncio.sleep(0.01)
    assert sorted(thread.is_alive() for thread in threads) == [False, True, True]  # the third is let go


def test_the_served_application_runs_django_on_this_handler() -> None:
    from mcpsite import asgi

    assert isinstance(asgi.django_asgi_app, ReusedThreadASGIHandler)


BOUNDARY = "mcpsite.request_threads.MiddlewareInRequestThread"
RECORDER = f"{__name__}.ThreadRecorder"


def hand_overs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every call handed to a request thread, from now on."""
    calls: list[object] = []
    submit = RequestThread.submit

    def counted(self: RequestThread, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(RequestThread, "submit", counted)
    return calls


async def test_middleware_and_an_async_view_s_own_work_share_the_request_s_thread() -> None:
    assert settings.MIDDLEWARE[-1] == BOUNDARY
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE[:-1], RECORDER, BOUNDARY]):
        app = ReusedThreadASGIHandler(RequestThreads(keep=4))
    request = await served(app, "/async")

    middleware_thread, view_work_thread = (int(ident) for ident in request.body.split())
    assert request.status == 200
    assert middleware_thread == view_work_thread != threading.get_ident()


async def test_the_middleware_crosses_to_the_request_s_thread_once_not_per_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = {}
    for label, middleware in (("boundary", settings.MIDDLEWARE), ("without", settings.MIDDLEWARE[:-1])):
        with override_settings(MIDDLEWARE=[*middleware[:-1], RECORDER, middleware[-1]]):
            app = ReusedThreadASGIHandler(RequestThreads(keep=4))
        calls = hand_overs(monkeypatch)
        assert (await served(app, "/async")).status == 200
        counts[label] = len(calls)
        monkeypatch.undo()
    # At most: request_started's receivers, the middleware, CSRF's process_view, the view's
    # own work and closing the response. Without the boundary, each middleware hook too.
    assert counts["boundary"] <= 5 < counts["without"]
