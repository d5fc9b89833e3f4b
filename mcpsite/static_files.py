"""Static files (the admin's stylesheets and scripts, GraphiQL's) served by the node itself, with WhiteNoise.

In production, collectstatic writes them to STATIC_ROOT under hashed names
(`base.5af66c1b1797.css`, WhiteNoise's CompressedManifestStaticFilesStorage),
with gzip copies; WhiteNoise reads that folder once at start and answers
`/static/...` from memory, with `Cache-Control: max-age=315360000, public,
immutable` on a hashed name (the name changes whenever the content does), a
gzip body to clients that accept one, ETag and Range. With DEBUG on it finds
the files in the apps and in node_modules as they are (no collectstatic).

WhiteNoise's Django middleware is synchronous: under our ASGI handler it would
serve a file from the request's thread, and Django would read the whole file
into memory to send it. This subclass is asynchronous only: it answers from the
event loop, with the same lookup and headers, and reads files in a thread, a
chunk at a time. Django hands the middleware below it to the request's thread in
one step (mcpsite/request_threads.py), and under a synchronous handler (Django's
test client) adapts it as any asynchronous middleware.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

logger = logging.getLogger(__name__)

# Bytes read from a file per thread hop.
CHUNK_BYTES = 256 * 1024


class StaticFilesMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]  # whitenoise ships no type information
    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        with warnings.catch_warnings():
            # Said below, as a log record that says what to do.
            warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
            super().__init__(get_response)
        if not self.autorefresh and self.static_root and not os.path.isdir(self.static_root):
            logger.warning(
                "No static files at %s (DJANGO_STATIC_ROOT): run `manage.py collectstatic`; until then every page "
                "that links one (the admin, the front page) answers 500",
                self.static_root,
            )
        # Django asks the middleware, not its __call__, whether it is asynchronous.
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info
        static_file = None
        if path.startswith(self.static_prefix):
            # With autorefresh (DEBUG) finding a file looks at the disk; otherwise it is a dictionary lookup.
            static_file = await asyncio.to_thread(self.find_file, path) if self.autorefresh else self.files.get(path)
        if static_file is None:
            response: HttpResponseBase = await self.get_response(request)
            return response
        answer = await asyncio.to_thread(static_file.get_response, request.method, request.META)
        served: HttpResponseBase = (
            StreamingHttpResponse(_chunks(answer.file), status=int(answer.status))
            if answer.file is not None
            else HttpResponse(status=int(answer.status))
        )
        # WhiteNoise's headers say it all (type, length, caching, encoding).
        del served["Content-Type"]
        for name, value in answer.headers:
            served[name] = value
        return served


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()
