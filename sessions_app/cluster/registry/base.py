"""The session registry: which handshake-era sessions exist in the cluster, and where.

A record says which node owns a session and how to reach it (its channel-layer
channel), never anything about its transport state, which lives only in the
owner's memory. Records are written when a session is created and deleted when
it closes; nothing reads or writes them while a live session is being served.

Nodes also keep a heartbeat, `node:{node_id}` -> boot id, with a short TTL: a
record is "live" while its owner's heartbeat carries the boot id the record was
written under, so a node that restarts under the same name does not vouch for
its previous life's sessions.

Backends implement the sync methods; the async twins run them in a thread so
that a slow or unreachable Redis never blocks the event loop.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from typing import Any

SESSION_KEY_PREFIX = "mcp:session:"
NODE_KEY_PREFIX = "mcp:node:"


def session_key(session_id: str) -> str:
    return f"{SESSION_KEY_PREFIX}{session_id}"


def node_key(node_id: str) -> str:
    return f"{NODE_KEY_PREFIX}{node_id}"


@dataclass(frozen=True)
class SessionRecord:
    """What the registry knows about one session: where it lives, and what it needs to continue elsewhere.

    The continuation state (protocol version, the client's info and
    capabilities, log level, subscriptions, principal) is what another node
    needs to adopt the session when its owner is gone (session/adoption.py);
    nothing of the transport is here. `adoptable` is False when the session
    outgrew what a record may hold.

    Serialized with `to_dict`/`from_dict`; a field added here must get a
    default in `from_dict` so records written by older nodes still load.
    """

    session_id: str
    node_id: str
    boot_id: str
    channel_name: str
    created_at: float
    protocol_version: str
    client_name: str = ""
    client_version: str = ""
    principal: str = ""
    client_info: dict[str, Any] = field(default_factory=dict)
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    log_level: str = ""
    subscriptions: tuple[str, ...] = ()
    adoptable: bool = True
    # The node this session was adopted from, if it was.
    adopted_from: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["subscriptions"] = list(self.subscriptions)
        return data

    def owned_by(self, node_id: str, boot_id: str) -> SessionRecord:
        """This record, now naming another owner (an adopter)."""
        return replace(self, node_id=node_id, boot_id=boot_id, adopted_from=self.node_id)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(
            session_id=str(data["session_id"]),
            node_id=str(data["node_id"]),
            boot_id=str(data.get("boot_id", "")),
            channel_name=str(data.get("channel_name", "")),
            created_at=float(data.get("created_at", 0.0)),
            protocol_version=str(data.get("protocol_version", "")),
            client_name=str(data.get("client_name", "")),
            client_version=str(data.get("client_version", "")),
            principal=str(data.get("principal", "")),
            client_info=_mapping(data.get("client_info")),
            client_capabilities=_mapping(data.get("client_capabilities")),
            log_level=str(data.get("log_level", "")),
            subscriptions=tuple(str(uri) for uri in data.get("subscriptions") or ()),
            adoptable=bool(data.get("adoptable", True)),
            adopted_from=str(data.get("adopted_from", "")),
        )


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ListedRecord:
    record: SessionRecord
    # Seconds until the key expires; None if it has no expiry.
    ttl: float | None


class RegistryUnavailable(Exception):
    """The registry's store could not be reached or answered with an error."""


class SessionRegistry(ABC):
    """The contract every backend keeps. Methods raise RegistryUnavailable on store failures."""

    def __init__(self, *, session_ttl: float, node_ttl: float) -> None:
        self.session_ttl = session_ttl
        self.node_ttl = node_ttl

    @abstractmethod
    def add(self, record: SessionRecord) -> None:
        """Write the record with the session TTL (one write)."""

    @abstractmethod
    def remove(self, session_id: str) -> None:
        """Delete the record if present (one write)."""

    @abstractmethod
    def get(self, session_id: str) -> SessionRecord | None: ...

    @abstractmethod
    def records(self) -> list[ListedRecord]:
        """Every record in the cluster, with its remaining TTL."""

    @abstractmethod
    def claim(self, record: SessionRecord, previous_node: str, previous_boot: str) -> bool:
        """Write `record` only if the stored one still names (`previous_node`, `previous_boot`) as owner.

        Atomic: of several nodes claiming one orphaned session at once,
        exactly one gets True. False if the record changed owner or is gone.
        """

    @abstractmethod
    def heartbeat(self, node_id: str, boot_id: str) -> bool:
        """Say that `node_id` (this life of it: `boot_id`) is alive for the next node TTL.

        Returns whether this life's heartbeat was still there: False on the
        first beat, and after the store lost its data (a Redis restart).
        """

    @abstractmethod
    def forget_node(self, node_id: str, boot_id: str) -> None:
        """Drop the heartbeat, if it is still this life's (a clean shutdown)."""

    @abstractmethod
    def live_nodes(self) -> dict[str, str]:
        """Node id -> boot id of every node whose heartbeat has not expired."""

    def node_boot_id(self, node_id: str) -> str | None:
        return self.live_nodes().get(node_id)

    async def aadd(self, record: SessionRecord) -> None:
        await asyncio.to_thread(self.add, record)

    async def aremove(self, session_id: str) -> None:
        await asyncio.to_thread(self.remove, session_id)

    async def aclaim(self, record: SessionRecord, previous_node: str, previous_boot: str) -> bool:
        return await asyncio.to_thread(self.claim, record, previous_node, previous_boot)

    async def aget(self, session_id: str) -> SessionRecord | None:
        return await asyncio.to_thread(self.get, session_id)

    async def arecords(self) -> list[ListedRecord]:
        return await asyncio.to_thread(self.records)

    async def aheartbeat(self, node_id: str, boot_id: str) -> bool:
        return await asyncio.to_thread(self.heartbeat, node_id, boot_id)

    async def aforget_node(self, node_id: str, boot_id: str) -> None:
        await asyncio.to_thread(self.forget_node, node_id, boot_id)

    async def alive_nodes(self) -> dict[str, str]:
        return await asyncio.to_thread(self.live_nodes)

    async def anode_boot_id(self, node_id: str) -> str | None:
        return await asyncio.to_thread(self.node_boot_id, node_id)
