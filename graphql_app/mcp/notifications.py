"""Who hears about a changed decision record, in this process.

Changes arrive from the change feed (sessions_app/change_feed.py), once per
node, wherever they were made. Two kinds of local listener get them:

- handshake-era sessions that subscribed to a record (`resources/subscribe`)
  or listed the records: they are told on their standalone stream, through the
  SDK session proxy kept from their subscribing request, so the notification
  lands in the session's replay log like any other;
- 2026-07-28 `subscriptions/listen` streams, which the SDK's `ListenHandler`
  feeds from `bus`.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from mcp.server import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from graphql_app.models import Decision
from sessions_app.cluster.change_feed import Change
from sessions_app.cluster.pacing import Pace, PacedSubscriptionBus
from sessions_app.session.manager import session_manager

logger = logging.getLogger(__name__)

# This process's 2026-07-28 listen streams.
bus = PacedSubscriptionBus()


class HandshakeListeners:
    """Handshake-era sessions of this process and what they want to hear, by session id."""

    def __init__(self) -> None:
        self._proxies: dict[str, ServerSession] = {}
        self._uris: dict[str, set[str]] = {}
        self._list_watchers: set[str] = set()

    def subscribe(self, ctx: ServerRequestContext[Any], uri: str) -> None:
        if (session_id := _session_id(ctx)) is not None:
            self._remember(session_id, ctx.session)
            self._uris.setdefault(session_id, set()).add(uri)

    def unsubscribe(self, ctx: ServerRequestContext[Any], uri: str) -> None:
        if (session_id := _session_id(ctx)) is not None:
            self._uris.get(session_id, set()).discard(uri)

    def watch_list(self, ctx: ServerRequestContext[Any]) -> None:
        if (session_id := _session_id(ctx)) is not None:
            self._remember(session_id, ctx.session)
            self._list_watchers.add(session_id)

    def _remember(self, session_id: str, proxy: ServerSession) -> None:
        self._proxies[session_id] = proxy
        # Sessions end without telling the server; keep no more entries than
        # this process has sessions.
        live = session_manager()
        if len(self._proxies) > len(live):
            for gone in [known for known in self._proxies if live.get(known) is None]:
                self._forget(gone)

    async def deliver(self, change: Change) -> None:
        pace = Pace()
        for session_id, proxy in list(self._proxies.items()):
            try:
                watched = self._uris.get(session_id, set())
                # A resync: every record the session watches may have changed unseen.
                for uri in sorted(watched) if change.resync else [change.uri] if change.uri in watched else []:
                    await proxy.send_resource_updated(uri)
                if (change.list_changed or change.resync) and session_id in self._list_watchers:
                    await proxy.send_resource_list_changed()
            except Exception:
                # The session ended since it subscribed: forget it.
                logger.debug("Dropping the listeners of an ended MCP session")
                self._forget(session_id)
            await pace.step()

    def _forget(self, session_id: str) -> None:
        self._proxies.pop(session_id, None)
        self._uris.pop(session_id, None)
        self._list_watchers.discard(session_id)


handshake_listeners = HandshakeListeners()


async def deliver(change: Change) -> None:
    """The change feed's listener for this process."""
    if change.resync:
        # The bus keeps no list of what its streams watch: announce every record, it filters.
        for uri in await database_sync_to_async(_every_uri)():
            await bus.publish(ResourceUpdated(uri=uri))
    elif change.uri is not None:
        await bus.publish(ResourceUpdated(uri=change.uri))
    if change.list_changed or change.resync:
        await bus.publish(ResourcesListChanged())
    await handshake_listeners.deliver(change)


def _every_uri() -> list[str]:
    from .resources import uri_of  # resources.py imports this module

    return [uri_of(number) for number in Decision.objects.values_list("number", flat=True)]


def _session_id(ctx: ServerRequestContext[Any]) -> str | None:
    """The handshake session a request belongs to; None in the sessionless 2026-07-28 era."""
    if ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    headers = getattr(ctx.request, "headers", None)
    return headers.get("mcp-session-id") if isinstance(headers, dict) else None
