"""Django's ASGI handler, with each request's synchronous thread kept for the next request.

Django runs the synchronous parts of an async request (middleware, the ORM,
signal receivers) on a thread of the request's own, so that one request's slow
query never holds up another's. Its handler starts that thread for each request,
and a second one to join the first when the request ends. Those two thread
starts took half the time of a GraphQL mutation (14.7 ms against 7.9 ms without
them, measured in-process while the machine's other core was busy). Here a
finished request hands its thread back and the next request takes it;
everything else is Django's handler unchanged, so each request still has one
thread to itself for as long as it runs, and a kept thread is what a WSGI
server's worker thread is to Django: thread-local state (the database
connection) outlives the request only as Django's own settings allow.

A request the server cancels while its thread is still busy does not hand that
thread back: the thread finishes its work and exits, and nobody queues behind
it. At most KEPT_THREADS idle threads are kept; under more concurrent requests
than that, threads come and go as they did before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import django
from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# Idle request threads kept for reuse: more than a node's usual concurrency of
# Django requests (health checks, GraphQL, the admin), and each costs only its
# stack's resident pages.
KEPT_THREADS = 16

P = ParamSpec("P")
R = TypeVar("R")


class RequestThread(ThreadPoolExecutor):
    """One worker thread that knows whether it still has work in hand."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="django-request")
        self._lock = threading.Lock()
        self._unfinished = 0

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        with self._lock:
            self._unfinished += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._finished()
            raise
        future.add_done_callback(lambda _: self._finished())
        return future

    def _finished(self) -> None:
        with self._lock:
            self._unfinished -= 1

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._unfinished == 0


class RequestThreads:
    """Idle request threads, the most recently used first (its stack is still warm)."""

    def __init__(self, keep: int = KEPT_THREADS) -> None:
        self.keep = keep
        self._idle: list[RequestThread] = []

    def take(self) -> RequestThread:
        return self._idle.pop() if self._idle else RequestThread()

    def give_back(self, thread: RequestThread) -> None:
        if thread.idle and len(self._idle) < self.keep:
            self._idle.append(thread)
        else:
            # Not waited for: a busy thread exits once its work is done.
            thread.shutdown(wait=False)

    def __len__(self) -> int:
        return len(self._idle)


class ReusedThreadASGIHandler(ASGIHandler):
    """Django's ASGIHandler, its per-request thread taken from `threads` (only the loop's thread calls it)."""

    def __init__(self, threads: RequestThreads | None = None) -> None:
        super().__init__()
        self.threads = threads if threads is not None else RequestThreads()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = self.threads.take()
        context = ThreadSensitiveContext()
        async with context:
            # Where asgiref looks up the context's thread, and would start one on the
            # request's first synchronous call: everything thread-sensitive in the
            # request runs on `thread` instead.
            SyncToAsync.context_to_thread_executor[context] = thread
            try:
                await self.handle(scope, receive, send)
            finally:
                # Taken out before the context exits, which would shut it down. A task
                # the request leaves behind (Django's, when the server cancels it) and
                # that still has synchronous work gets a thread of its own, as before.
                del SyncToAsync.context_to_thread_executor[context]
                self.threads.give_back(thread)


class MiddlewareInRequestThread:
    """Last in MIDDLEWARE: Django then runs the middleware above it in the request's thread, in one step.

    Django's own middleware is synchronous. Under the ASGI handler, each one
    that may also run asynchronously (all of Django's) is called from the loop
    and sends every hook to the request's thread and back: a dozen hand-overs
    per request. One synchronous-only middleware below them all makes Django
    run them synchronously instead: the request crosses to its thread once,
    runs them all there, and crosses back once for the (asynchronous) view.
    Middleware that is asynchronous only (static files) stays on the loop.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)


def get_asgi_application() -> ReusedThreadASGIHandler:
    """What `django.core.asgi.get_asgi_application` does, with our handler."""
    django.setup(set_prefix=False)
    return ReusedThreadASGIHandler()
