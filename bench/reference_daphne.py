"""The reference application (bench/reference_app.py) under our production server instead of uvicorn.

`python -m mcpsite.http_server bench.reference_daphne:application`. daphne
speaks no ASGI lifespan, and the SDK's Streamable HTTP app starts its session
manager in its lifespan; so the lifespan is entered here, by the first
request, and held for the life of the process.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsite.settings")
django.setup()  # mcpsite.http_server reads its limits from the settings

from .reference_app import create_app  # noqa: E402

app = create_app()
_started: asyncio.Future[None] | None = None


async def _hold_lifespan(started: asyncio.Future[None]) -> None:
    async with app.router.lifespan_context(app):
        started.set_result(None)
        await asyncio.Event().wait()


async def application(scope: Any, receive: Any, send: Any) -> None:
    global _started
    if _started is None:
        _started = asyncio.get_running_loop().create_future()
        _holder.append(asyncio.get_running_loop().create_task(_hold_lifespan(_started)))
    await _started
    await app(scope, receive, send)


_holder: list[asyncio.Task[None]] = []  # keeps the lifespan's task referenced
