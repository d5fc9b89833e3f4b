"""The change group's reaper takes out a channel only once its node has been missing for the grace.

Right after Redis restarts empty, every node's heartbeat is gone until its next
beat while the nodes' channels are back in the group: a reaper that judged at
once would take live nodes out, and they would stop hearing of changes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from channels.layers import get_channel_layer
from django.test import override_settings

from sessions_app.cluster.change_feed import GROUP, MEMBERS_KEY, reap_dead_members
from tests.redis_server import RedisServer

GRACE = 5.0


@pytest.fixture
def layer(redis_server: RedisServer) -> Iterator[None]:
    redis_server.client().flushdb()
    config = {"hosts": [redis_server.url]}
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}}
    ):
        yield


async def join(channel: str, life: str) -> None:
    layer = get_channel_layer()
    await layer.group_add(GROUP, channel)
    await layer.connection(layer.consistent_hash(GROUP)).hset(MEMBERS_KEY, channel, life)


async def members() -> set[str]:
    layer = get_channel_layer()
    found = await layer.connection(layer.consistent_hash(GROUP)).hkeys(MEMBERS_KEY)
    return {name.decode() if isinstance(name, bytes) else name for name in found}


@pytest.mark.usefixtures("layer")
async def test_a_channel_goes_only_once_its_node_has_been_missing_for_the_grace() -> None:
    await join("a-channel", "node-a boot-1")
    missing_since: dict[str, float] = {}

    # node-a's heartbeat is not there (Redis just restarted, say): remembered, not reaped.
    assert await reap_dead_members({}, missing_since, now=100.0, grace=GRACE) == 0
    assert await reap_dead_members({}, missing_since, now=100.0 + GRACE - 0.1, grace=GRACE) == 0
    assert await members() == {"a-channel"}

    assert await reap_dead_members({}, missing_since, now=100.0 + GRACE, grace=GRACE) == 1
    assert await members() == set()
    assert missing_since == {}


@pytest.mark.usefixtures("layer")
async def test_a_node_that_beats_again_within_the_grace_keeps_its_channel() -> None:
    await join("a-channel", "node-a boot-1")
    missing_since: dict[str, float] = {}

    assert await reap_dead_members({}, missing_since, now=100.0, grace=GRACE) == 0
    assert await reap_dead_members({"node-a": "boot-1"}, missing_since, now=101.0, grace=GRACE) == 0
    assert missing_since == {}  # forgotten: the next absence starts a new grace

    assert await reap_dead_members({}, missing_since, now=102.0, grace=GRACE) == 0
    # A grace after the first absence, but not after this one.
    assert await reap_dead_members({}, missing_since, now=100.0 + GRACE, grace=GRACE) == 0
    assert await members() == {"a-channel"}


@pytest.mark.usefixtures("layer")
async def test_a_channel_of_a_previous_life_counts_as_missing() -> None:
    await join("old-channel", "node-a boot-1")
    missing_since: dict[str, float] = {}

    # node-a is alive, but restarted: boot-2 does not vouch for boot-1's channel.
    alive = {"node-a": "boot-2"}
    assert await reap_dead_members(alive, missing_since, now=0.0, grace=GRACE) == 0
    assert await reap_dead_members(alive, missing_since, now=GRACE, grace=GRACE) == 1
