"""This process's table of live handshake-era sessions.

The manager admits new sessions (up to MCP_MAX_SESSIONS), finds them by id,
reaps idle ones, and closes them through one path, `close`. Its ordering
rules, which matter under concurrency:

- a session is put in the table before its first await, and taken out before
  any await in `close`, so an id either answers or 404s, never half of each;
- `close` is idempotent: the first caller frees the session, later ones find
  nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from channels.layers import get_channel_layer

from .conf import McpSettings, mcp_settings
from .exceptions import NodeFull
from .server_host import hosted_server
from .session import McpSession

logger = logging.getLogger(__name__)


def new_session_id() -> str:
    """192 random bits, URL-safe base64: visible ASCII, unguessable."""
    return secrets.token_urlsafe(24)


class SessionManager:
    def __init__(self, settings: McpSettings) -> None:
        self.settings = settings
        self._sessions: dict[str, McpSession] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[bool]] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> McpSession | None:
        return self._sessions.get(session_id)

    def sessions(self) -> list[McpSession]:
        return list(self._sessions.values())

    async def create(self) -> McpSession:
        if len(self._sessions) >= self.settings.max_sessions:
            logger.warning("Refusing a new MCP session: %d sessions are open", len(self._sessions))
            raise NodeFull("Service Unavailable: this node holds its maximum of sessions", headers={"Retry-After": "5"})
        host = await hosted_server()
        layer = get_channel_layer()
        channel_name = await layer.new_channel(prefix="mcp-session.") if layer is not None else ""
        session = McpSession(new_session_id(), self.settings, host, self.close_soon, channel_name)
        self._sessions[session.id] = session
        session.start()
        self._ensure_reaper()
        return session

    async def close(self, session_id: str, reason: str) -> bool:
        """The one way a session ends. Returns False if this node did not hold it."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        logger.info("Closing MCP session %s: %s", session_id[:8], reason)
        try:
            await session.stop()
        except Exception:
            logger.exception("MCP session %s did not stop cleanly; it is forgotten anyway", session_id[:8])
        return True

    async def close_all(self, reason: str) -> None:
        for session_id in list(self._sessions):
            await self.close(session_id, reason)

    def close_soon(self, session: McpSession, reason: str) -> None:
        """Close `session` from a task of its own (for callers inside the session)."""
        if self._sessions.get(session.id) is not session:
            return
        task = asyncio.get_running_loop().create_task(self.close(session.id, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle(), name="mcp-idle-reaper")

    async def _reap_idle(self) -> None:
        timeout = self.settings.session_idle_timeout
        interval = min(max(timeout / 4, 0.05), 30.0)
        while self._sessions:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session in [s for s in self._sessions.values() if s.is_idle(now, timeout)]:
                await self.close(session.id, "idle timeout")


_manager: SessionManager | None = None


def session_manager() -> SessionManager:
    """This process's manager, created on first use (and anew after settings change in tests)."""
    global _manager
    settings = mcp_settings()
    if _manager is None or _manager.settings is not settings:
        _manager = SessionManager(settings)
    return _manager
