"""The Redis registry, through django-redis (cache alias `mcp_registry`).

That alias has `KEY_FUNCTION` `raw_key` (and, for `iter_keys`, the
`REVERSE_KEY_FUNCTION` `raw_key_reversed`), so keys are stored exactly as
`mcp:session:{id}` and `mcp:node:{id}`, with no django-redis prefix or
version, and a JSON serializer so operators can read them with redis-cli.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import caches
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from sessions_app import metrics

from .base import (
    NODE_KEY_PREFIX,
    SESSION_KEY_PREFIX,
    ListedRecord,
    RegistryUnavailable,
    SessionRecord,
    SessionRegistry,
    node_key,
    session_key,
)

T = TypeVar("T")

# Compare-and-set of a session's owner, in one step on the server. The value
# is the JSON the cache's serializer writes, so Lua's cjson reads it.
CLAIM_SCRIPT = """
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local record = cjson.decode(stored)
if record.node_id ~= ARGV[1] or record.boot_id ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return 1
"""


def raw_key(key: str, key_prefix: str, version: int) -> str:
    """django-redis KEY_FUNCTION: the key as given."""
    return key


def raw_key_reversed(key: str) -> str:
    """django-redis REVERSE_KEY_FUNCTION (used by iter_keys): the stored key is the key."""
    return key


class RedisSessionRegistry(SessionRegistry):
    def __init__(self, *, cache_alias: str = "mcp_registry", session_ttl: float, node_ttl: float) -> None:
        super().__init__(session_ttl=session_ttl, node_ttl=node_ttl)
        self.cache_alias = cache_alias

    @property
    def _cache(self) -> Any:
        # Looked up per call: Django hands each thread its own cache object.
        return caches[self.cache_alias]

    def _call(self, name: str, operation: Callable[[], T]) -> T:
        """Run `operation` against Redis, timed and counted as `name` (sessions_app/metrics.py)."""
        started = time.perf_counter()
        try:
            return operation()
        except (RedisError, ConnectionInterrupted, OSError) as exc:
            metrics.registry_errors.labels(name).inc()
            raise RegistryUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            metrics.registry_duration.labels(name).observe(time.perf_counter() - started)

    def add(self, record: SessionRecord) -> None:
        self._call("add", lambda: self._cache.set(session_key(record.session_id), record.to_dict(), self.session_ttl))

    def claim(self, record: SessionRecord, previous_node: str, previous_boot: str) -> bool:
        key = session_key(record.session_id)
        value = json.dumps(record.to_dict())

        def swap() -> bool:
            client = self._cache.client.get_client(write=True)
            return bool(client.eval(CLAIM_SCRIPT, 1, key, previous_node, previous_boot, value, int(self.session_ttl)))

        return self._call("claim", swap)

    def remove(self, session_id: str) -> None:
        self._call("remove", lambda: self._cache.delete(session_key(session_id)))

    def get(self, session_id: str) -> SessionRecord | None:
        data = self._call("get", lambda: self._cache.get(session_key(session_id)))
        return SessionRecord.from_dict(data) if isinstance(data, dict) else None

    def records(self) -> list[ListedRecord]:
        def read() -> list[ListedRecord]:
            cache = self._cache
            keys = list(cache.iter_keys(f"{SESSION_KEY_PREFIX}*"))
            values = cache.get_many(keys)
            pipeline = cache.client.get_client(write=False).pipeline(transaction=False)
            for key in keys:
                pipeline.ttl(key)
            ttls = dict(zip(keys, pipeline.execute(), strict=True))
            return [
                ListedRecord(SessionRecord.from_dict(value), _seconds(ttls.get(key)))
                for key, value in values.items()
                if isinstance(value, dict)
            ]

        return self._call("records", read)

    def heartbeat(self, node_id: str, boot_id: str) -> bool:
        def beat() -> bool:
            was_there = bool(self._cache.get(node_key(node_id)) == boot_id)
            self._cache.set(node_key(node_id), boot_id, self.node_ttl)
            return was_there

        return self._call("heartbeat", beat)

    def forget_node(self, node_id: str, boot_id: str) -> None:
        def forget() -> None:
            if self._cache.get(node_key(node_id)) == boot_id:
                self._cache.delete(node_key(node_id))

        self._call("forget_node", forget)

    def live_nodes(self) -> dict[str, str]:
        def read() -> dict[str, str]:
            cache = self._cache
            values = cache.get_many(list(cache.iter_keys(f"{NODE_KEY_PREFIX}*")))
            return {key.removeprefix(NODE_KEY_PREFIX): str(boot) for key, boot in values.items()}

        return self._call("live_nodes", read)

    def node_boot_id(self, node_id: str) -> str | None:
        boot = self._call("node_boot_id", lambda: self._cache.get(node_key(node_id)))
        return None if boot is None else str(boot)


def _seconds(ttl: Any) -> float | None:
    """Redis TTL reply -> seconds left; -1 (no expiry) and -2 (gone) -> None."""
    return float(ttl) if isinstance(ttl, int) and ttl >= 0 else None
