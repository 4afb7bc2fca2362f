"""The game channel's atomic scripts against a real private redis-server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from roomd.domain.bus_message import BusMessage
from roomd.domain.errors import DomainError
from roomd.domain.keys import channel, history_key, hostless_key, room_key, state_key, values_key
from roomd.domain.store import Resumed, RoomOptions, RoomStore, Snapshot
from roomd.protocol import ErrorCode
from tests.support.schedule import scheduled


async def members(store: RoomStore, count: int, **options: Any) -> tuple[str, list[str]]:
    host = await store.create_room("Host", options=RoomOptions(**options))
    ids = [host.user_id] + [(await store.join_room(host.room_code, f"P{i}")).user_id for i in range(count - 1)]
    for n, user_id in enumerate(ids):
        await store.connect(host.room_code, user_id, f"s{n}")
    return host.room_code, ids


async def published(client: aioredis.Redis, code: str, action: Any) -> list[BusMessage]:
    """The bus messages ``action`` publishes on the room's channel."""
    pubsub = client.pubsub()
    await pubsub.subscribe(channel(code))
    await pubsub.get_message(timeout=1)
    await action
    found = []
    while (message := await pubsub.get_message(timeout=0.2)) is not None:
        if message["type"] == "message":
            found.append(BusMessage.decode(message["data"]))
    await pubsub.aclose()
    return found


def event(msg: BusMessage) -> dict[str, Any]:
    return msg.frame()


async def test_private_entries_are_published_to_their_readers_only(store: RoomStore, redis_client) -> None:
    code, (host, p1, p2, p3) = await members(store, 4)
    [msg] = await published(redis_client, code, store.set_state(code, host, "k", '"v"', visible_to=[p1]))
    assert msg.to == {host, p1} and event(msg) == {
        "event": "state:changed", "data": {"key": "k", "value": "v", "version": msg.seq, "by": host}, "seq": msg.seq
    }  # fmt: skip
    [msg] = await published(redis_client, code, store.set_state(code, host, "h", "1", visible_to="host"))
    assert msg.to == {host}
    [msg] = await published(redis_client, code, store.set_state(code, host, "a", "1"))
    assert msg.to is None  # everyone: the fast path
    # Visibility follows the member: once p1 is kicked, it is no longer a recipient.
    await store.kick(code, host, p1)
    [msg] = await published(redis_client, code, store.set_state(code, host, "k", '"w"'))
    assert msg.to == {host}
    [msg] = await published(redis_client, code, store.delete_state(code, None, "k"))
    assert msg.to == {host} and event(msg)["data"]["by"] == "ADMIN"
    # Narrowing visibility tells those who lose it, before the change reaches the others.
    deleted, changed = await published(redis_client, code, store.set_state(code, host, "a", "2", visible_to=[p2]))
    assert event(deleted)["event"] == "state:deleted" and deleted.to == {p3}
    assert changed.to == {host, p2} and changed.seq == deleted.seq + 1


async def test_values_are_kept_and_relayed_verbatim(store: RoomStore, redis_client) -> None:
    code, (host, p1) = await members(store, 2)
    value = '{"big":123456789012345678901234567890,"f":0.1,"u":"Zoë \\ud83c\\udfb2"}'
    await store.set_state(code, host, "k", value)
    assert await redis_client.hget(values_key(code), "k") == value.encode()
    [msg] = await published(redis_client, code, store.send_game_message(code, p1, "host", "t", value))
    assert msg.frame()["data"]["data"] == json.loads(value)
    snapshot = await store.snapshot(code, p1, "s1")
    assert snapshot.state["k"]["value"] == json.loads(value)


async def test_concurrent_conditional_writes_let_exactly_one_win(store: RoomStore) -> None:
    code, (host, p1) = await members(store, 2)
    version = await store.set_state(code, host, "slot", "0", writable_by="all")
    results = await asyncio.gather(
        *(store.set_state(code, who, "slot", str(n), if_version=version) for n, who in enumerate([host, p1] * 15)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, DomainError)]
    assert len(winners) == 1 and len(losers) == 29
    assert all(e.code is ErrorCode.VERSION_CONFLICT and e.data == {"version": winners[0]} for e in losers)


async def test_failed_writes_change_nothing(redis_client) -> None:
    store = RoomStore(redis_client, ttl_seconds=600, state_max_keys=2, state_max_bytes=10)
    code, (host, p1) = await members(store, 2)
    await store.set_state(code, host, "a", '"12345678"')
    before = await everything(redis_client, code)
    attempts = [
        (store.set_state(code, host, "a", '"123456789"'), ErrorCode.STATE_TOO_LARGE),
        (store.set_state(code, host, "b", "1"), ErrorCode.STATE_TOO_LARGE),  # 11 bytes
        (store.set_state(code, p1, "a", "1"), ErrorCode.NOT_ALLOWED),
        (store.set_state(code, host, "a", "1", if_version=1), ErrorCode.VERSION_CONFLICT),
        (store.set_state(code, host, "a", "1", visible_to=["ghost"]), ErrorCode.MEMBER_NOT_FOUND),
        (store.set_state(code, "ghost", "a", "1"), ErrorCode.MEMBER_NOT_FOUND),
        (store.delete_state(code, p1, "a"), ErrorCode.NOT_ALLOWED),
        (store.send_game_message(code, p1, "all", "t", "1"), ErrorCode.NOT_ALLOWED),
        (store.send_game_message(code, host, [p1, "ghost"], "t", "1"), ErrorCode.MEMBER_NOT_FOUND),
    ]
    for attempt, expected in attempts:
        with pytest.raises(DomainError) as info:
            await attempt
        assert info.value.code is expected
    assert await everything(redis_client, code) == before
    await store.set_state(code, host, "a", '"1234567"')
    await store.set_state(code, host, "b", "0")  # 10 bytes in 2 keys: the limits are inclusive


async def everything(client: aioredis.Redis, code: str) -> list[Any]:
    return [
        await client.get(room_key(code)),
        await client.hgetall(state_key(code)),
        await client.hgetall(values_key(code)),
        await client.lrange(history_key(code), 0, -1),
    ]


async def test_history_is_contiguous_bounded_and_lives_with_the_room(redis_client) -> None:
    store = RoomStore(redis_client, ttl_seconds=600, history_size=5)
    code, (host, p1) = await members(store, 2)
    for n in range(8):
        await store.send_game_message(code, host, "all", "t", str(n))
    kept = [BusMessage.decode(m) for m in await redis_client.lrange(history_key(code), 0, -1)]
    room = json.loads(await redis_client.get(room_key(code)))
    assert [m.seq for m in kept] == list(range(room["seq"] - 4, room["seq"] + 1))
    await store.set_state(code, host, "k", "1")
    for key in (history_key(code), state_key(code), values_key(code)):
        assert 0 < await redis_client.pttl(key) <= 600_000
    # since within the history: the missed messages; beyond it: a snapshot.
    last = room["seq"] + 1
    resumed = await store.connect_since(code, p1, "s9", last - 2)
    assert isinstance(resumed, Resumed) and [BusMessage.decode(m).seq for m in resumed.messages] == [last - 1, last]
    assert resumed.seq == last + 1  # this connection's own user:connected
    assert isinstance(await store.connect_since(code, p1, "s10", last - 10), Snapshot)
    assert isinstance(await store.connect_since(code, p1, "s11", last + 100), Snapshot)
    await store.close_room(code, host)
    for key in (history_key(code), state_key(code), values_key(code)):
        assert not await redis_client.exists(key)


async def test_host_grace_hands_over_once_to_the_longest_standing_connected_member(redis_client) -> None:
    store = RoomStore(redis_client, ttl_seconds=600)
    other = RoomStore(redis_client, ttl_seconds=600)  # another instance sweeping too
    code, (host, p1, p2) = await members(store, 3, host_migration="disconnect")
    plain, (plain_host, _) = await members(store, 2)
    await store.disconnect(plain, plain_host, "s0")  # hostMigration "leave": never swept
    await store.disconnect(code, p1, "s1")  # the oldest player is offline: p2 is the heir
    await store.disconnect(code, host, "s0")
    assert await redis_client.zscore(hostless_key(), await scheduled(redis_client, code)) is not None
    assert await redis_client.zscore(hostless_key(), await scheduled(redis_client, plain)) is None
    assert await store.migrate_absent_hosts(60_000) == []  # not yet due
    changes = await asyncio.gather(store.migrate_absent_hosts(0), other.migrate_absent_hosts(0))
    assert changes[0] + changes[1] == [code]
    assert (await store.get_room(code))["hostId"] == p2
    assert await redis_client.zscore(hostless_key(), await scheduled(redis_client, code)) is None


async def test_host_grace_waits_for_someone_connected_and_ends_when_the_host_returns(redis_client) -> None:
    store = RoomStore(redis_client, ttl_seconds=600)
    code, (host, p1) = await members(store, 2, host_migration="disconnect")
    await store.disconnect(code, p1, "s1")
    await store.disconnect(code, host, "s0")
    assert await store.migrate_absent_hosts(0) == []  # nobody connected: nothing changes...
    assert (
        await redis_client.zscore(hostless_key(), await scheduled(redis_client, code)) is None
    )  # ...and the room leaves the sweep
    await store.connect(code, p1, "s2")  # ...until someone connects
    assert await store.migrate_absent_hosts(0) == [code]
    assert (await store.get_room(code))["hostId"] == p1
    # The new host drops and comes back before the grace: nothing happens.
    await store.disconnect(code, p1, "s2")
    await store.connect(code, host, "s3")
    await store.connect(code, p1, "s4")
    assert await redis_client.zscore(hostless_key(), await scheduled(redis_client, code)) is None
    assert await store.migrate_absent_hosts(0) == []


async def test_an_admin_extend_keeps_the_game_keys_with_the_room(store: RoomStore, redis_client) -> None:
    """roomctl rooms extend re-arms every key of the room: its state and history too."""
    code, (host, _) = await members(store, 2)
    await store.set_state(code, host, "k", "1")
    for key in (history_key(code), state_key(code), values_key(code)):
        await redis_client.pexpire(key, 1000)  # as if most of the TTL had passed
    await store.extend(code)
    for key in (history_key(code), state_key(code), values_key(code)):
        assert await redis_client.pttl(key) > 500_000, key
