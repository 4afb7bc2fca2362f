"""Presence scripts against a real Redis: the socket index, reaping dead instances, host hand-over.

A "dead" instance is one whose heartbeat in ``roomd:instances`` is older than
the store's ``instance_timeout_ms``; tests make one by writing an old score.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
import redis.asyncio as aioredis

from roomd import config
from roomd.domain import store as store_module
from roomd.domain.bus_message import BusMessage
from roomd.domain.keys import Layout
from roomd.domain.store import RoomStore, SocketRef

L = Layout()  # the layout the tests' stores use (no prefix)
INSTANCES_KEY = L.instances
channel, instance_sockets_key = L.channel, L.instance_sockets


def store_on(client: aioredis.Redis, instance: str, **kwargs: int) -> RoomStore:
    """A store acting as roomd instance ``instance``."""
    s = RoomStore(client, ttl_seconds=600, **kwargs)
    s.instance_id = instance
    return s


async def user(client: aioredis.Redis, code: str, user_id: str) -> dict:
    return json.loads(await client.hget(L.users(code), user_id))


async def kill(client: aioredis.Redis, instance: str) -> None:
    """The instance stops heartbeating: its last heartbeat is long past."""
    await client.zadd(INSTANCES_KEY, {instance: 1})


async def collect(pubsub: aioredis.client.PubSub, count: int) -> list[tuple[str, dict, dict]]:
    """The next ``count`` bus messages as (channel, meta, frame)."""
    seen: list[tuple[str, dict, dict]] = []
    while len(seen) < count:
        message = await pubsub.get_message(timeout=5)
        assert message is not None, f"only {len(seen)} of {count} messages"
        if message["type"] == "message":
            msg = BusMessage.decode(message["data"])
            seen.append((message["channel"].decode(), msg.meta(), msg.frame()))
    return seen


async def test_connect_records_the_instance_and_indexes_the_socket(redis_client: aioredis.Redis) -> None:
    a, b = store_on(redis_client, "a:1:1:x"), store_on(redis_client, "b:2:2:y")
    host = await a.create_room("Host")
    await a.connect(host.room_code, host.user_id, "s1")
    record = await user(redis_client, host.room_code, host.user_id)
    assert record["instance"] == "a:1:1:x" and record["socketId"] == "s1"
    assert await a.instance_sockets() == [SocketRef(host.room_code, host.user_id, "s1")]
    assert await redis_client.zscore(INSTANCES_KEY, "a:1:1:x") is not None  # connect counts as a heartbeat
    # A newer socket on another instance replaces it: the index follows the user.
    await b.connect(host.room_code, host.user_id, "s2")
    assert await a.instance_sockets() == []
    assert await b.instance_sockets() == [SocketRef(host.room_code, host.user_id, "s2")]
    # The replaced socket's disconnect changes nothing; the current one's empties the index.
    assert await a.disconnect(host.room_code, host.user_id, "s1") is False
    assert await b.disconnect(host.room_code, host.user_id, "s2") is True
    assert await b.instance_sockets() == []
    record = await user(redis_client, host.room_code, host.user_id)
    assert record["isConnected"] is False and record["socketId"] == "" and record["instance"] == ""


async def test_leave_kick_and_close_take_sockets_out_of_the_index(redis_client: aioredis.Redis) -> None:
    a = store_on(redis_client, "a:1:1:x")
    host = await a.create_room("Host")
    players = [await a.join_room(host.room_code, f"P{i}") for i in range(3)]
    for i, m in enumerate([host, *players]):
        await a.connect(host.room_code, m.user_id, f"s{i}")
    assert len(await a.instance_sockets()) == 4
    await a.leave(host.room_code, players[0].user_id)
    await a.kick(host.room_code, host.user_id, players[1].user_id)
    assert {r.user_id for r in await a.instance_sockets()} == {host.user_id, players[2].user_id}
    await a.close_room(host.room_code, None)
    assert await a.instance_sockets() == []


async def test_a_dead_instances_members_are_disconnected_like_a_closed_socket(redis_client: aioredis.Redis) -> None:
    live, dead = store_on(redis_client, "live:1:1:x"), store_on(redis_client, "dead:2:2:y")
    host = await live.create_room("Host")
    ghost = await live.join_room(host.room_code, "Ghost")
    await live.connect(host.room_code, host.user_id, "s1")
    await dead.connect(host.room_code, ghost.user_id, "s2")
    assert await live.reap_instance("dead:2:2:y") == 0  # alive: nothing happens
    assert (await user(redis_client, host.room_code, ghost.user_id))["isConnected"] is True

    await kill(redis_client, "dead:2:2:y")
    assert await live.heartbeat() == ["dead:2:2:y"]  # the heartbeat names stale instances, never itself
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(channel(host.room_code))
    await pubsub.get_message(timeout=1)
    assert await live.reap_instance("dead:2:2:y") == 1
    [(_, meta, frame)] = await collect(pubsub, 1)
    await pubsub.aclose()
    assert frame == {
        "event": "user:disconnected",
        "data": {"user": {"id": ghost.user_id, "displayName": "Ghost", "isConnected": False, "isHost": False}},
        "seq": meta["seq"],
    }
    assert meta["seq"] == json.loads(await redis_client.get(L.room(host.room_code)))["seq"]
    assert (await user(redis_client, host.room_code, ghost.user_id))["isConnected"] is False
    # The live instance's member stays.
    assert (await user(redis_client, host.room_code, host.user_id))["isConnected"] is True
    # The dead instance is gone: its index and its heartbeat entry.
    assert not await redis_client.exists(instance_sockets_key("dead:2:2:y"))
    assert await redis_client.zscore(INSTANCES_KEY, "dead:2:2:y") is None
    assert await live.heartbeat() == []


async def test_reaping_skips_members_who_reconnected_elsewhere(redis_client: aioredis.Redis) -> None:
    live, dead = store_on(redis_client, "live:1:1:x"), store_on(redis_client, "dead:2:2:y")
    host = await live.create_room("Host")
    await dead.connect(host.room_code, host.user_id, "old")
    await redis_client.sadd(instance_sockets_key("dead:2:2:y"), f"{host.room_code}|{host.user_id}|old")  # a stale copy
    await live.connect(host.room_code, host.user_id, "new")  # the user moved to the live instance
    await redis_client.sadd(instance_sockets_key("dead:2:2:y"), f"{host.room_code}|{host.user_id}|old")
    await kill(redis_client, "dead:2:2:y")
    assert await live.reap_instance("dead:2:2:y") == 0
    record = await user(redis_client, host.room_code, host.user_id)
    assert record["isConnected"] is True and record["socketId"] == "new"


async def test_concurrent_reapers_disconnect_each_member_exactly_once(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "REAP_BATCH", 4)  # many small batches, interleaved between reapers
    dead = store_on(redis_client, "dead:9:9:z")
    reapers = [store_on(redis_client, f"live:{i}:{i}:r") for i in range(4)]
    members: list[tuple[str, str]] = []
    for r in range(3):
        host = await dead.create_room(f"H{r}")
        joined = [host] + [await dead.join_room(host.room_code, f"P{r}{i}") for i in range(9)]
        for i, m in enumerate(joined):
            await dead.connect(host.room_code, m.user_id, f"s{r}-{i}")
            members.append((host.room_code, m.user_id))
    await kill(redis_client, "dead:9:9:z")
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(*{channel(code) for code, _ in members})
    for _ in range(3):
        await pubsub.get_message(timeout=1)
    marked = await asyncio.gather(*(r.reap_instance("dead:9:9:z") for r in reapers))
    assert sum(marked) == 30
    seen = await collect(pubsub, 30)
    await pubsub.aclose()
    assert Counter(frame["event"] for _, _, frame in seen) == {"user:disconnected": 30}
    assert Counter(frame["data"]["user"]["id"] for _, _, frame in seen) == Counter({uid: 1 for _, uid in members})
    for code, uid in members:
        assert (await user(redis_client, code, uid))["isConnected"] is False
    assert await redis_client.zscore(INSTANCES_KEY, "dead:9:9:z") is None
    # Each room's events keep consecutive sequence numbers: no update of a room was lost between reapers.
    for code in {c for c, _ in members}:
        seqs = [meta["seq"] for name, meta, _ in seen if name == channel(code)]
        assert seqs == list(range(seqs[0], seqs[0] + 10))


async def test_a_draining_instance_retires_its_own_index(redis_client: aioredis.Redis) -> None:
    a = store_on(redis_client, "a:1:1:x")
    host = await a.create_room("Host")
    await a.connect(host.room_code, host.user_id, "s1")
    await a.heartbeat()
    assert await a.reap_instance("a:1:1:x") == 0  # fresh: not dead
    assert await a.reap_instance("a:1:1:x", retire=True) == 1
    assert (await user(redis_client, host.room_code, host.user_id))["isConnected"] is False
    assert await redis_client.zscore(INSTANCES_KEY, "a:1:1:x") is None


async def test_host_hand_over_skips_members_of_dead_instances(redis_client: aioredis.Redis) -> None:
    live, dead = store_on(redis_client, "live:1:1:x"), store_on(redis_client, "dead:2:2:y")
    host = await live.create_room("Host")
    ghost = await live.join_room(host.room_code, "Ghost")  # older than every live member
    offline = await live.join_room(host.room_code, "Offline")  # never connected
    alive = await live.join_room(host.room_code, "Alive")
    await live.connect(host.room_code, host.user_id, "s1")
    await dead.connect(host.room_code, ghost.user_id, "s2")
    await live.connect(host.room_code, alive.user_id, "s3")
    await kill(redis_client, "dead:2:2:y")
    assert (await live.leave(host.room_code, host.user_id)).new_host_id == alive.user_id
    # With nobody connected through a live instance, a disconnected member rather than a ghost...
    assert (await live.leave(host.room_code, alive.user_id)).new_host_id == offline.user_id
    # ...and the ghost only when nobody else remains (a room always has a host).
    assert (await live.leave(host.room_code, offline.user_id)).new_host_id == ghost.user_id


async def test_a_member_of_an_instance_that_left_the_heartbeat_set_is_not_live(redis_client: aioredis.Redis) -> None:
    live, gone = store_on(redis_client, "live:1:1:x"), store_on(redis_client, "gone:2:2:y")
    host = await live.create_room("Host")
    ghost = await live.join_room(host.room_code, "Ghost")
    alive = await live.join_room(host.room_code, "Alive")
    await gone.connect(host.room_code, ghost.user_id, "s2")
    await live.connect(host.room_code, alive.user_id, "s3")
    await redis_client.zrem(INSTANCES_KEY, "gone:2:2:y")
    result = await live.kick(host.room_code, None, host.user_id)
    assert result.new_host_id == alive.user_id


async def test_the_staleness_bound_is_the_stores(redis_client: aioredis.Redis) -> None:
    strict = store_on(redis_client, "strict:1:1:x", instance_timeout_ms=500)
    relaxed = store_on(redis_client, "relaxed:1:1:x", instance_timeout_ms=60_000)
    other = store_on(redis_client, "other:2:2:y")
    host = await strict.create_room("Host")
    await other.connect(host.room_code, host.user_id, "s1")
    (seconds, micros) = await redis_client.time()
    await redis_client.zadd(INSTANCES_KEY, {"other:2:2:y": seconds * 1000 + micros // 1000 - 5_000})  # 5 s old
    assert await relaxed.heartbeat() == []
    assert await relaxed.reap_instance("other:2:2:y") == 0
    assert await strict.heartbeat() == ["other:2:2:y"]
    assert await strict.reap_instance("other:2:2:y") == 1


def test_the_staleness_bound_is_configurable() -> None:
    assert config.from_env({}).instance_timeout_ms == 15_000
    settings = config.from_env({"INSTANCE_TIMEOUT_MS": "1500"})
    assert settings.instance_timeout_ms == 1500
    for wrong in ("0", "499", "soon"):
        with pytest.raises(config.ConfigError, match="INSTANCE_TIMEOUT_MS"):
            config.from_env({"INSTANCE_TIMEOUT_MS": wrong})
