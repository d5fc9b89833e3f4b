"""The production server's event loop: uvloop, unless MCP_EVENT_LOOP=asyncio.

daphne runs Twisted on an asyncio event loop that it creates when `daphne.server`
is first imported, from whatever event loop policy is set then; so `install`
must run before that import (mcpsite/http_server.py calls it first thing).
Twisted's asyncio reactor needs of its loop only what uvloop also provides
(readers, writers, timers, thread-safe callbacks), and the loop's own work is
a share of every request: per `tools/call`, the stdlib loop's scheduling runs
in Python and uvloop's in C (about 9 % fewer instructions per request in
the node, benchmark scenario 1).

The main thread runs nothing but this loop, so `install` also tells sniffio
so once: anyio asks sniffio which library runs at every memory-stream and
cancel-scope operation (the SDK's sessions and our 2026-07-28 requests use
both), and sniffio otherwise finds out through `asyncio.current_task` each
time, about 3 % of a node's CPU per `tools/call`. Other threads (Django's
sync work) keep sniffio's usual detection.

Read from the environment, not Django's settings: this runs before anything
else is imported.
"""

from __future__ import annotations

import asyncio
import os

import sniffio
from django.core.exceptions import ImproperlyConfigured

CHOICES = ("uvloop", "asyncio")


def install() -> None:
    """Set the event loop policy MCP_EVENT_LOOP names, and name asyncio to sniffio in this thread."""
    choice = os.environ.get("MCP_EVENT_LOOP", "uvloop") or "uvloop"
    if choice not in CHOICES:
        raise ImproperlyConfigured(f"MCP_EVENT_LOOP must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sniffio.thread_local.name = "asyncio"
