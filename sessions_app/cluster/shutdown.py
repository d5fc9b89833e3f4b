"""Graceful shutdown on SIGTERM, the production path (daphne).

1. The node starts draining: /healthz answers 503, so the load balancer moves
   new traffic away, and `initialize` is refused with 503. The first such 503
   is logged once, at INFO, with how far the drain has got
   (`announce_refused_health_check`); Django's ERROR record of each one is
   dropped (sessions_app/log_filters.py).
2. After MCP_SHUTDOWN_DRAIN_DELAY, while the balancer has noticed, the
   sessions go one of two ways:
   - hand-off (MCP_SHUTDOWN_HANDOFF, when sessions are adoptable): requests
     in flight finish, the node stops heartbeating and listening, and each
     session's streams end with a `retry:` hint. The records stay: the
     clients reconnect to a healthy node, which adopts their sessions
     (session/adoption.py). Nothing else changes for them.
   - close: every session is closed through the one close path: its streams
     end with `retry:` (clients reconnect elsewhere, get 404 and
     re-initialize) and its registry record is deleted.
3. The node drops its heartbeat and stops the server.

The whole drain is bounded by MCP_SHUTDOWN_GRACE; a second SIGTERM stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from sessions_app.cluster.change_feed import change_feed
from sessions_app.session.close_reason import CloseReason

if TYPE_CHECKING:
    from sessions_app.session.manager import SessionManager

logger = logging.getLogger(__name__)

# Of the grace, what a hand-off leaves for ending the streams and saying goodbye.
HANDOFF_RESERVE = 1.0


def install_sigterm_drain(manager: SessionManager) -> None:
    """On SIGTERM, drain this node (`drain_then_stop`) instead of stopping at once."""
    if threading.current_thread() is not threading.main_thread():
        # `runserver` serves from a thread under its autoreloader, which owns
        # the signals; only a server in the main thread (daphne) drains.
        logger.debug("Not in the main thread: SIGTERM keeps its default handling")
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # A signal handler runs between bytecodes; hand the work to the loop.
        loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_stop(manager, lambda: _chain(previous, signum))))

    signal.signal(signal.SIGTERM, on_sigterm)


def _chain(previous: Any, signum: int) -> None:
    """Let the server's own SIGTERM handling (daphne: stop Twisted's reactor) finish the job."""
    if callable(previous):
        previous(signum, None)
    else:
        raise SystemExit(0)


def announce_refused_health_check(manager: SessionManager) -> None:
    """/healthz has answered 503: the first time in this drain, say so, with what is left to drain.

    That the balancer is being told is worth one line; each health check that
    follows (every few seconds, per balancer) says nothing new.
    """
    node = manager.node
    if node.drain_announced:
        return
    node.drain_announced = True
    logger.info(
        "Draining: /healthz answers 503 from now on (sessions left: %d, open streams: %d; %.1f s into a drain"
        " of at most %.1f s)",
        len(manager),
        manager.open_streams,
        time.monotonic() - node.draining_since,
        node.settings.shutdown_grace,
    )


async def drain_then_stop(manager: SessionManager, stop_server: Callable[[], None]) -> None:
    node = manager.node
    if node.draining:
        logger.warning("Second SIGTERM: stopping now")
        stop_server()
        return
    node.draining = True
    node.draining_since = started = time.monotonic()
    settings = node.settings
    logger.warning("SIGTERM: draining %d sessions within %.1f s", len(manager), settings.shutdown_grace)

    def time_left() -> float:
        return max(settings.shutdown_grace - (time.monotonic() - started), 0.1)

    try:
        async with asyncio.timeout(settings.shutdown_grace):
            await asyncio.sleep(min(settings.shutdown_drain_delay, settings.shutdown_grace / 2))
            if await manager.can_hand_off():
                await manager.hand_off(within=time_left() - HANDOFF_RESERVE)
            else:
                await manager.close_all(CloseReason.SHUTDOWN)
            await change_feed().leave()
            if not await node.writer.drain(within=time_left()):
                logger.warning("Shutdown: %d registry writes could not be made", node.writer.backlog)
            await node.stop()
    except TimeoutError:
        logger.warning("Shutdown grace of %.1f s ran out; stopping anyway", settings.shutdown_grace)
    except Exception:
        logger.exception("Shutdown did not complete cleanly; stopping anyway")
    logger.warning("Drained in %.2f s; stopping", time.monotonic() - started)
    stop_server()
