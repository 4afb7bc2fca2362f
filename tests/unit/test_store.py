"""The Redis model's atomic operations, against a real private redis-server."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from roomd.domain import keys
from roomd.domain.bus_message import BusMessage
from roomd.domain.errors import DomainError
from roomd.domain.store import CLAIM_GRACE_MS, RoomOptions, RoomStore, new_user_id, now_ms
from roomd.protocol import ErrorCode
from tests.support.schedule import scheduled

L = keys.Layout()  # the layout the tests' stores use (no prefix)


async def keys_of(client: aioredis.Redis, code: str) -> list[str]:
    """The keys of room ``code`` that exist (members live in the room's users hash)."""
    return [n for n in L.room_keys(code)[:6] if await client.exists(n)]


async def member(client: aioredis.Redis, code: str, user_id: str) -> dict | None:
    raw = await client.hget(L.users(code), user_id)
    return None if raw is None else json.loads(raw)


async def test_create_makes_host_member_with_ttl(store: RoomStore, redis_client: aioredis.Redis) -> None:
    m = await store.create_room("Ana", 5)
    room = json.loads(await redis_client.get(L.room(m.room_code)))
    assert room["hostId"] == m.user_id and room["maxUsers"] == 5 and room["isLocked"] is False
    assert await redis_client.hkeys(L.users(m.room_code)) == [m.user_id.encode()]
    user = await member(redis_client, m.room_code, m.user_id)
    assert user["displayName"] == "Ana" and user["roomCode"] == m.room_code and user["isConnected"] is False
    for key in (L.room(m.room_code), L.users(m.room_code)):
        assert 0 < await redis_client.ttl(key) <= 600
    claim = json.loads(await redis_client.get(L.claim(m.room_code)))
    assert claim == {"incarnation": room["incarnation"], "createdAt": room["createdAt"]}
    assert 600_000 < await redis_client.pttl(L.claim(m.room_code)) <= 600_000 + CLAIM_GRACE_MS  # outlives the room
    assert await redis_client.zscore(L.index, m.room_code) == room["createdAt"]
    assert await redis_client.zscore(L.expiry, await scheduled(redis_client, m.room_code)) == room["expiresAt"]


async def test_codes_use_the_alphabet_and_length(redis_client: aioredis.Redis) -> None:
    store = RoomStore(redis_client, ttl_seconds=60, code_alphabet="XYZ", code_length=6)
    codes = {(await store.create_room("A")).room_code for _ in range(20)}
    assert len(codes) == 20
    assert all(len(c) == 6 and set(c) <= set("XYZ") for c in codes)


async def test_code_space_exhaustion_is_a_clear_error(redis_client: aioredis.Redis) -> None:
    store = RoomStore(redis_client, ttl_seconds=60, code_alphabet="AB", code_length=1)
    assert {(await store.create_room("A")).room_code for _ in range(2)} == {"A", "B"}
    with pytest.raises(DomainError) as info:
        await store.create_room("C")
    assert info.value.code is ErrorCode.ROOM_CODE_GENERATION_FAILED


async def test_concurrent_creates_never_share_a_code(redis_client: aioredis.Redis) -> None:
    store = RoomStore(redis_client, ttl_seconds=60, code_alphabet="ABCDEF", code_length=2)
    results = await asyncio.gather(*(store.create_room(f"P{i}") for i in range(30)), return_exceptions=True)
    codes = [r.room_code for r in results if not isinstance(r, BaseException)]
    assert len(codes) == len(set(codes)) >= 25  # a crowded space of 36 codes: a few may find no free one...
    for failure in (r for r in results if isinstance(r, BaseException)):  # ...and say so
        assert isinstance(failure, DomainError) and failure.code is ErrorCode.ROOM_CODE_GENERATION_FAILED
    for code in codes:
        assert await redis_client.hlen(L.users(code)) == 1


async def test_thirty_concurrent_joins_fill_exactly_to_capacity(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host", 10)
    results = await asyncio.gather(
        *(store.join_room(host.room_code, f"P{i}") for i in range(30)), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(ok) == 9
    assert all(isinstance(f, DomainError) and f.code is ErrorCode.ROOM_FULL for f in failed)
    assert await redis_client.hlen(L.users(host.room_code)) == 10


async def test_join_refused_when_locked_or_missing(store: RoomStore) -> None:
    host = await store.create_room("Host")
    assert await store.set_lock(host.room_code, host.user_id) is True
    with pytest.raises(DomainError) as info:
        await store.join_room(host.room_code, "Late")
    assert info.value.code is ErrorCode.ROOM_LOCKED
    with pytest.raises(DomainError) as info:
        await store.join_room("ZZZZ", "Lost")
    assert info.value.code is ErrorCode.ROOM_NOT_FOUND


async def test_host_leaving_passes_to_longest_standing_connected_member(store: RoomStore) -> None:
    host = await store.create_room("Host")
    first = await store.join_room(host.room_code, "First")
    second = await store.join_room(host.room_code, "Second")
    third = await store.join_room(host.room_code, "Third")
    # "First" is the oldest but offline; the oldest connected member is "Second".
    await store.connect(host.room_code, second.user_id, "s2")
    await store.connect(host.room_code, third.user_id, "s3")
    result = await store.leave(host.room_code, host.user_id)
    assert result.new_host_id == second.user_id
    assert (await store.get_room(host.room_code))["hostId"] == second.user_id
    # Nobody connected: the longest-standing member wins.
    await store.disconnect(host.room_code, second.user_id, "s2")
    await store.disconnect(host.room_code, third.user_id, "s3")
    result = await store.leave(host.room_code, second.user_id)
    assert result.new_host_id == first.user_id


async def test_last_member_leaving_deletes_the_room(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Solo")
    result = await store.leave(host.room_code, host.user_id)
    assert result.room_deleted
    assert await keys_of(redis_client, host.room_code) == []
    assert await redis_client.zscore(L.index, host.room_code) is None


async def test_close_deletes_every_key(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host")
    player = await store.join_room(host.room_code, "P")
    with pytest.raises(DomainError) as info:
        await store.close_room(host.room_code, player.user_id)
    assert info.value.code is ErrorCode.NOT_HOST
    await store.close_room(host.room_code, host.user_id)
    assert await keys_of(redis_client, host.room_code) == []
    assert await redis_client.zscore(L.index, host.room_code) is None
    with pytest.raises(DomainError) as info:
        await store.check_member(host.room_code, host.user_id)
    assert info.value.code is ErrorCode.ROOM_NOT_FOUND


async def test_kick_rules(store: RoomStore) -> None:
    host = await store.create_room("Host")
    player = await store.join_room(host.room_code, "P")
    other = await store.create_room("Elsewhere")
    cases = [
        (player.user_id, host.user_id, ErrorCode.NOT_HOST),
        (host.user_id, host.user_id, ErrorCode.CANNOT_KICK_SELF),
        (host.user_id, other.user_id, ErrorCode.MEMBER_NOT_FOUND),  # a user of another room
        (host.user_id, "nobody", ErrorCode.MEMBER_NOT_FOUND),
    ]
    for actor, target, expected in cases:
        with pytest.raises(DomainError) as info:
            await store.kick(host.room_code, actor, target)
        assert info.value.code is expected
    await store.kick(host.room_code, host.user_id, player.user_id)
    with pytest.raises(DomainError) as info:
        await store.check_member(host.room_code, player.user_id)
    assert info.value.code is ErrorCode.MEMBER_NOT_FOUND
    await store.check_member(other.room_code, other.user_id)  # untouched


async def test_admin_kick_of_the_host_reassigns(store: RoomStore) -> None:
    host = await store.create_room("Host")
    player = await store.join_room(host.room_code, "P")
    result = await store.kick(host.room_code, None, host.user_id)
    assert result.new_host_id == player.user_id


async def test_transfer_host_rules(store: RoomStore) -> None:
    host = await store.create_room("Host")
    player = await store.join_room(host.room_code, "P")
    for actor, target, expected in [
        (player.user_id, player.user_id, ErrorCode.NOT_HOST),
        (host.user_id, host.user_id, ErrorCode.ALREADY_HOST),
        (host.user_id, "ghost", ErrorCode.MEMBER_NOT_FOUND),
    ]:
        with pytest.raises(DomainError) as info:
            await store.transfer_host(host.room_code, actor, target)
        assert info.value.code is expected
    await store.transfer_host(host.room_code, host.user_id, player.user_id)
    assert (await store.get_room(host.room_code))["hostId"] == player.user_id


async def test_failed_operations_change_nothing(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host")
    player = await store.join_room(host.room_code, "P")
    before = await redis_client.get(L.room(host.room_code))
    for attempt in (
        store.set_lock(host.room_code, player.user_id),
        store.kick(host.room_code, player.user_id, host.user_id),
        store.transfer_host(host.room_code, player.user_id, player.user_id),
        store.close_room(host.room_code, player.user_id),
    ):
        with pytest.raises(DomainError):
            await attempt
    assert await redis_client.get(L.room(host.room_code)) == before


async def test_concurrent_toggles_are_never_lost(store: RoomStore) -> None:
    host = await store.create_room("Host")
    await asyncio.gather(*(store.set_lock(host.room_code, host.user_id) for _ in range(31)))
    assert (await store.get_room(host.room_code))["isLocked"] is True  # odd number of toggles


async def test_concurrent_leaves_keep_exactly_one_host(store: RoomStore) -> None:
    host = await store.create_room("Host")
    players = [await store.join_room(host.room_code, f"P{i}") for i in range(6)]
    leavers = [host, *players[:4]]
    await asyncio.gather(*(store.leave(host.room_code, m.user_id) for m in leavers))
    room = await store.get_room(host.room_code)
    remaining = {m.user_id for m in players[4:]}
    assert room["hostId"] in remaining and room["memberCount"] == 2


async def test_connect_snapshot_and_replacement(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host")
    snapshot = await store.connect(host.room_code, host.user_id, "sock-1")
    assert snapshot.users == [{"id": host.user_id, "displayName": "Host", "isConnected": True, "isHost": True}]
    assert snapshot.room["code"] == host.room_code and snapshot.seq >= 1
    # A newer socket replaces the first; the old socket's disconnect must not flip presence.
    await store.connect(host.room_code, host.user_id, "sock-2")
    assert await store.disconnect(host.room_code, host.user_id, "sock-1") is False
    assert (await store.get_user(host.room_code, host.user_id))["isConnected"] is True
    assert await store.disconnect(host.room_code, host.user_id, "sock-2") is True
    assert (await store.get_user(host.room_code, host.user_id))["isConnected"] is False


async def test_every_mutation_publishes_in_order(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host")
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(L.channel(host.room_code))
    await pubsub.get_message(timeout=1)  # subscribe confirmation
    player = await store.join_room(host.room_code, "P")
    await store.connect(host.room_code, player.user_id, "s")
    await store.set_lock(host.room_code, host.user_id)
    await store.transfer_host(host.room_code, host.user_id, player.user_id)
    await store.kick(host.room_code, player.user_id, host.user_id)
    await store.close_room(host.room_code, None)
    seen = []
    while len(seen) < 6:
        message = await pubsub.get_message(timeout=2)
        assert message is not None
        if message["type"] == "message":
            msg = BusMessage.decode(message["data"])
            seen.append((msg.seq, msg.frame()["event"]))
    await pubsub.aclose()
    assert [event for _, event in seen] == [
        "user:joined",
        "user:connected",
        "room:lock_toggled",
        "room:host_updated",
        "user:left",
        "room:closed",
    ]
    seqs = [seq for seq, _ in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_expiry_sweep_closes_expired_rooms_once(redis_client: aioredis.Redis) -> None:
    store = RoomStore(redis_client, ttl_seconds=600)
    other = RoomStore(redis_client, ttl_seconds=600)  # a second instance sweeping too
    host = await store.create_room("Host")
    alive = await store.create_room("Alive")
    expired, live = await scheduled(redis_client, host.room_code), await scheduled(redis_client, alive.room_code)
    await redis_client.delete(L.room(host.room_code))  # as if Redis expired it
    await redis_client.zadd(L.expiry, {expired: 0, live: 0})
    closed = await asyncio.gather(store.expire_due_rooms(), other.expire_due_rooms())
    assert sorted(closed[0] + closed[1]) == [host.room_code]
    # The live room was re-armed with its real deadline, not closed.
    deadline = json.loads(await redis_client.get(L.room(alive.room_code)))["expiresAt"]
    assert deadline - 1_000 <= await redis_client.zscore(L.expiry, live) <= deadline + 1_000
    await store.check_member(alive.room_code, alive.user_id)
    # The expired room left every index and its claim is gone: the code is free.
    assert await redis_client.zscore(L.expiry, expired) is None
    assert await redis_client.zscore(L.index, host.room_code) is None
    assert await keys_of(redis_client, host.room_code) == []


async def test_a_thousand_concurrent_operations_queue_for_connections(redis_client: aioredis.Redis) -> None:
    """A mass disconnect must not fail with "Too many connections": the pool waits instead."""
    store = RoomStore(redis_client, ttl_seconds=60)
    host = await store.create_room("Host")
    results = await asyncio.gather(
        *(store.disconnect(host.room_code, f"user-{i}", "socket") for i in range(1000)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []


def test_user_ids_never_begin_with_a_dash() -> None:
    """An id typed after ``roomctl users kick CODE`` must not read as an option (about 1 in 64 did)."""
    ids = [new_user_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids) and all(len(i) == 22 for i in ids)


async def test_a_store_with_other_rules_keeps_the_rooms_ttl(redis_client: aioredis.Redis) -> None:
    """roomctl built with default settings acting on a room roomd created with another TTL."""
    roomd_store = RoomStore(redis_client, ttl_seconds=600)
    roomctl_store = RoomStore(redis_client, ttl_seconds=60)
    host = await roomd_store.create_room("Host")
    player = await roomd_store.join_room(host.room_code, "P")
    code = host.room_code
    for action in (
        roomctl_store.set_lock(code, None),
        roomctl_store.transfer_host(code, None, player.user_id),
        roomctl_store.set_lock(code, None),
        roomctl_store.connect(code, host.user_id, "s"),
        roomctl_store.disconnect(code, host.user_id, "s"),
        roomctl_store.kick(code, None, host.user_id),
    ):
        await action
        for key in (L.room(code), L.users(code)):
            assert await redis_client.pttl(key) > 590_000, key
        assert await redis_client.pttl(L.claim(code)) > 590_000 + CLAIM_GRACE_MS
        # The sweep's schedule never lies past the room's real deadline (it may be earlier: a re-check).
        deadline = json.loads(await redis_client.get(L.room(code)))["expiresAt"]
        assert await redis_client.zscore(L.expiry, await scheduled(redis_client, code)) <= deadline
    late = await roomctl_store.join_room(code, "Late")
    assert await member(redis_client, code, late.user_id) is not None
    assert await redis_client.pttl(L.users(code)) > 590_000
    assert json.loads(await redis_client.get(L.room(code)))["ttlMs"] == 600_000  # the room's rule, in the room


async def test_a_code_overdue_for_expiry_is_not_reused_before_the_sweep(redis_client: aioredis.Redis) -> None:
    store = RoomStore(redis_client, ttl_seconds=600, code_alphabet="Q", code_length=1)
    old = await store.create_room("Old")
    first = json.loads(await redis_client.get(L.room("Q"))).get("incarnation")
    await redis_client.delete(L.room("Q"))  # as if Redis expired it, before the sweep
    await redis_client.zadd(L.expiry, {await scheduled(redis_client, "Q"): 0})
    with pytest.raises(DomainError) as info:
        await store.create_room("New")
    assert info.value.code is ErrorCode.ROOM_CODE_GENERATION_FAILED
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(L.channel("Q"))
    await pubsub.get_message(timeout=1)
    assert await store.expire_due_rooms() == ["Q"]
    message = None
    while message is None or message["type"] != "message":
        message = await pubsub.get_message(timeout=2)
        assert message is not None
    await pubsub.aclose()
    expired = BusMessage.decode(message["data"])
    assert expired.frame() == {"event": "room:closed", "data": {"reason": "EXPIRED"}}
    assert expired.meta() == {"close": {"code": 4410}, "inc": first}  # for the old room's sockets only
    assert await member(redis_client, "Q", old.user_id) is None
    new = await store.create_room("New")
    assert new.room_code == "Q"
    assert json.loads(await redis_client.get(L.room("Q")))["incarnation"] not in ("", first)


async def test_every_event_carries_the_rooms_incarnation(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host")
    snapshot = await store.connect(host.room_code, host.user_id, "s")
    assert len(snapshot.incarnation) == 16
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(L.channel(host.room_code))
    await pubsub.get_message(timeout=1)
    player = await store.join_room(host.room_code, "P")
    await store.set_lock(host.room_code, host.user_id)
    await store.kick(host.room_code, host.user_id, player.user_id)
    await store.disconnect(host.room_code, host.user_id, "s")
    await store.close_room(host.room_code, host.user_id)
    metas = []
    while len(metas) < 5:
        message = await pubsub.get_message(timeout=2)
        assert message is not None
        if message["type"] == "message":
            metas.append(BusMessage.decode(message["data"]).meta())
    await pubsub.aclose()
    assert [m["inc"] for m in metas] == [snapshot.incarnation] * 5
    assert not await redis_client.exists(L.claim(host.room_code))  # cleaned with the room


# -- cross-room indexes: updated after the scripts, repaired by the sweeps ---------------------


async def test_a_room_that_takes_the_code_during_the_expiry_sweep_keeps_its_entries(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep tells the expired room's members, then another instance creates a room with the
    same code before the sweep updates the indexes: the new room stays listed and scheduled."""
    store = RoomStore(redis_client, ttl_seconds=600, code_alphabet="Q", code_length=1)
    creator = RoomStore(redis_client, ttl_seconds=600, code_alphabet="Q", code_length=1)
    await store.create_room("Old")
    old_entry = await scheduled(redis_client, "Q")
    await redis_client.delete(L.room("Q"))
    await redis_client.zadd(L.expiry, {old_entry: 0})
    run_script = store._room_raw

    async def then_a_new_room(name: str, code: str, *args: object) -> object:
        result = await run_script(name, code, *args)
        if name == "expire":
            await creator.create_room("New")  # between the script and the index updates
        return result

    monkeypatch.setattr(store, "_room_raw", then_a_new_room)
    assert await store.expire_due_rooms() == ["Q"]
    new_entry = await scheduled(redis_client, "Q")
    assert new_entry != old_entry
    assert await redis_client.zrange(L.expiry, 0, -1) == [new_entry.encode()]
    new_room = json.loads(await redis_client.get(L.room("Q")))
    assert await redis_client.zscore(L.index, "Q") == new_room["createdAt"]


async def test_a_late_index_update_never_unschedules_a_newer_absence(store: RoomStore, redis_client) -> None:
    """The host left, came back and left again; the update for the return arrives last (another
    instance was slow): the newer absence stays scheduled."""
    host = await store.create_room("Ana", options=RoomOptions(host_migration="disconnect"))
    player = await store.join_room(host.room_code, "Bo")
    await store.connect(host.room_code, player.user_id, "p")
    await store.connect(host.room_code, host.user_id, "s1")
    await store.disconnect(host.room_code, host.user_id, "s1")
    member = await scheduled(redis_client, host.room_code)
    first = await redis_client.zscore(L.hostless, member)
    await store.connect(host.room_code, host.user_id, "s2")  # back: its entry goes...
    assert await redis_client.zscore(L.hostless, member) is None
    await asyncio.sleep(0.005)
    await store.disconnect(host.room_code, host.user_id, "s2")  # ...and gone again, later
    second = await redis_client.zscore(L.hostless, member)
    assert second is not None and second > first
    await store._apply(host.room_code, {"hosted": int(first), "inc": member.split("|")[1]})  # the late update
    assert await redis_client.zscore(L.hostless, member) == second


async def test_the_expiry_sweep_reschedules_a_lost_host_grace(store: RoomStore, redis_client) -> None:
    """rooms:hostless lost its entry (the update after the script never came): the expiry sweep's
    re-check of the room puts it back, so the hand-over is late by at most a TTL, never lost."""
    host = await store.create_room("Ana", options=RoomOptions(host_migration="disconnect"))
    player = await store.join_room(host.room_code, "Bo")
    await store.connect(host.room_code, player.user_id, "p")
    await store.connect(host.room_code, host.user_id, "s")
    await store.disconnect(host.room_code, host.user_id, "s")
    member = await scheduled(redis_client, host.room_code)
    away = await redis_client.zscore(L.hostless, member)
    await redis_client.zrem(L.hostless, member)
    assert await store.migrate_absent_hosts(0) == []  # nothing scheduled: nothing happens
    await redis_client.zadd(L.expiry, {member: 0})  # the room's re-check is due
    assert await store.expire_due_rooms() == []
    assert await redis_client.zscore(L.hostless, member) == away
    assert await store.migrate_absent_hosts(0) == [host.room_code]
    assert (await store.get_room(host.room_code))["hostId"] == player.user_id


async def test_one_expiry_sweep_handles_more_than_a_batch(redis_client: aioredis.Redis) -> None:
    """Live rooms come due for a re-check once per TTL: one sweep keeps going past a batch (up to
    its budget), so a large backlog of live rooms never delays an expired room by more than a sweep."""
    store = RoomStore(redis_client, ttl_seconds=600)
    rooms = [await store.create_room(f"H{n}") for n in range(250)]
    members = [await scheduled(redis_client, r.room_code) for r in rooms]
    await redis_client.zadd(L.expiry, dict.fromkeys(members, 0))
    expired = max(members).partition("|")[0]  # equal scores: the last in the sweep's order...
    await redis_client.delete(L.room(expired))  # ...has expired
    assert await store.expire_due_rooms(limit=100) == [expired]
    assert await redis_client.zcount(L.expiry, "-inf", now_ms()) == 0  # every live room re-armed


async def test_scripts_survive_a_flushed_script_cache(store: RoomStore) -> None:
    """NOSCRIPT (a restarted or promoted node) is answered by EVAL on the same node, which caches the script."""
    room = await store.create_room("Ana")
    await store.client.script_flush()
    joined = await store.join_room(room.room_code, "Bob")  # EVALSHA -> NOSCRIPT -> EVAL
    assert joined.room_code == room.room_code
    assert await store.client.script_exists(store._scripts["join"].sha) == [True]
