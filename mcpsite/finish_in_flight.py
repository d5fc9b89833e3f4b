"""Django's requests finish when the server cancels them, within a grace.

daphne cancels the application of every request still running when it stops
(and of one whose client left longer ago than its close timeout). Django's
ASGI handler, cancelled while a view runs, leaves behind the task it started
to listen for the client's disconnect. That task fails once the connection
closes, and asyncio logs "Task exception was never retrieved" at ERROR from
a node that shut down cleanly. Django's requests here are short (health
checks, GraphQL, the admin), so the better ending is the natural one: the
request runs to its answer, for up to `grace` seconds, and only then is it
cancelled. MCP requests do not pass through here; their consumer ends its
own work when cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

# How long a cancelled Django request may take to finish.
DJANGO_REQUEST_GRACE = 2.0


class FinishInFlight:
    """An ASGI application that lets a cancelled request of `app` finish within `grace` seconds."""

    def __init__(self, app: Any, grace: float = DJANGO_REQUEST_GRACE) -> None:
        self.app = app
        self.grace = grace

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        handling = asyncio.ensure_future(self.app(scope, receive, send))
        try:
            await asyncio.shield(handling)
        except asyncio.CancelledError:
            try:
                await asyncio.wait({handling}, timeout=self.grace)
            finally:
                if not handling.done():
                    handling.cancel()
                elif not handling.cancelled() and (error := handling.exception()) is not None:
                    logger.error("A request cancelled by the server failed as it finished", exc_info=error)
            raise
