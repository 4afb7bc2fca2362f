"""The audience's atomic scripts (audience_join/connect/disconnect/count/lock, a viewer's kick) on a real Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from roomd.domain import keys
from roomd.domain.bus_message import BusMessage
from roomd.domain.errors import DomainError
from roomd.domain.store import RoomOptions, RoomStore, Snapshot
from roomd.protocol import ErrorCode

L = keys.Layout()
AUDIENCE = RoomOptions(audience=True)


async def history(client: aioredis.Redis, code: str) -> list[BusMessage]:
    return [BusMessage.decode(raw) for raw in await client.lrange(L.history(code), 0, -1)]


async def test_admission_is_checked_and_written_in_one_step(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host", options=AUDIENCE)
    code = host.room_code
    results = await asyncio.gather(
        *(store.join_audience(code, f"V{i}", 30) for i in range(100)), return_exceptions=True
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(admitted) == 30 and len(refused) == 70
    assert {e.code for e in refused} == {ErrorCode.AUDIENCE_FULL}
    assert await redis_client.hlen(L.audience(code)) == 30
    viewer = json.loads(await redis_client.hget(L.audience(code), admitted[0].user_id))
    assert set(viewer) == {"id", "displayName", "joinedAt"}
    # The audience's keys live and die with the room: its TTL, deleted on close.
    audience_ttl, room_ttl = await redis_client.pttl(L.audience(code)), await redis_client.pttl(L.room(code))
    assert audience_ttl > 0 and abs(audience_ttl - room_ttl) < 1000
    assert await redis_client.hlen(L.users(code)) == 1  # viewers are not members
    assert await history(redis_client, code) == []  # no event for an admission
    await store.close_room(code, None)
    assert not await redis_client.exists(L.audience(code), L.audience_online(code))


async def test_refusals_change_nothing(store: RoomStore, redis_client: aioredis.Redis) -> None:
    plain = await store.create_room("Host")
    with pytest.raises(DomainError) as refused:
        await store.join_audience(plain.room_code, "V", 10)
    assert refused.value.code is ErrorCode.AUDIENCE_DISABLED
    host = await store.create_room("Host", options=AUDIENCE)
    code = host.room_code
    await store.set_lock(code, host.user_id, "lock")  # a locked room admits viewers
    await store.join_audience(code, "V", 10)
    locked, seq = await store.lock_audience(code, host.user_id, True)
    assert locked and (await history(redis_client, code))[-1].frame()["event"] == "audience:lock_updated"
    with pytest.raises(DomainError) as refused:
        await store.join_audience(code, "W", 10)
    assert refused.value.code is ErrorCode.AUDIENCE_LOCKED
    assert await redis_client.hlen(L.audience(code)) == 1
    assert (await store.lock_audience(code, host.user_id, True))[1] == seq  # no change, no event
    with pytest.raises(DomainError) as refused:
        await store.join_audience("ZZZZ", "V", 10)
    assert refused.value.code is ErrorCode.ROOM_NOT_FOUND


async def test_connect_counts_per_instance_and_the_count_goes_to_the_host(
    store: RoomStore, redis_client: aioredis.Redis
) -> None:
    host = await store.create_room("Host", options=AUDIENCE)
    code = host.room_code
    fans = [(await store.join_audience(code, f"F{i}", 10)).user_id for i in range(3)]
    store.instance_id = "a:1:1:x"
    await store.heartbeat()
    first, due = await store.audience_connect(code, fans[0], online=1)
    assert isinstance(first, Snapshot) and due > 0
    assert first.extra["you"] == {"audienceId": fans[0], "displayName": "F0", "role": "viewer"}
    assert first.extra["poll"] is None and [u["id"] for u in first.users] == [host.user_id]
    await store.audience_connect(code, fans[1], online=2)
    assert await redis_client.hgetall(L.audience_online(code)) == {b"a:1:1:x": b"2"}
    seq_before = int(json.loads(await redis_client.get(L.room(code)))["seq"])
    count, again = await store.audience_count(code, 2)
    assert (count, again) == (2, 0)
    published = (await history(redis_client, code))[-1]
    assert published.frame()["event"] == "audience:count" and published.frame()["data"] == {"count": 2}
    assert published.to == {host.user_id} and published.aud == 0 and published.seq == seq_before + 1
    room = json.loads(await redis_client.get(L.room(code)))
    assert room["audienceCount"] == 2 and room["updatedAt"] == room["createdAt"]  # viewers keep no room alive
    # Within a second: a changed count waits (the due time comes back), an unchanged one is quiet.
    await store.audience_connect(code, fans[2], online=3)
    count, again = await store.audience_count(code, 3)
    assert count == 3 and again > 0 and (await history(redis_client, code))[-1].seq == published.seq
    assert (await store.get_room(code))["audienceCount"] == 2
    # A field of a dead instance is dropped; our own count is re-asserted first.
    await redis_client.hset(L.audience_online(code), "dead:2:2:y", 40)
    await redis_client.hdel(L.audience_online(code), "a:1:1:x")  # as if dropped while we looked dead
    await redis_client.set(L.room(code), json.dumps({**room, "audienceCountAt": 0}), keepttl=True)
    count, again = await store.audience_count(code, 3)
    assert (count, again) == (3, 0)
    assert await redis_client.hgetall(L.audience_online(code)) == {b"a:1:1:x": b"3"}
    # Disconnects write the instance's remaining sockets; at 0 the field goes.
    assert await store.audience_disconnect(code, 0) > 0
    assert await redis_client.hgetall(L.audience_online(code)) == {}


async def test_a_kicked_viewer_is_gone(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host", options=AUDIENCE)
    code = host.room_code
    fan = (await store.join_audience(code, "Fan", 10)).user_id
    store.instance_id = "a:1:1:x"
    await store.audience_connect(code, fan)
    member = await store.join_room(code, "P1")
    with pytest.raises(DomainError) as refused:
        await store.kick(code, member.user_id, fan)  # not the host
    assert refused.value.code is ErrorCode.NOT_HOST
    result = await store.kick(code, host.user_id, fan)
    assert not result.room_deleted and result.new_host_id is None
    kicked = (await history(redis_client, code))[-1]
    assert kicked.frame()["event"] == "audience:kicked" and kicked.frame()["data"] == {"audienceId": fan}
    assert (kicked.aud, kicked.to, kicked.close) == (2, {fan}, {"code": 4403, "userId": fan})
    for attempt in (store.audience_connect(code, fan), store.check_viewer(code, fan)):
        with pytest.raises(DomainError) as refused:
            await attempt
        assert refused.value.code is ErrorCode.MEMBER_NOT_FOUND
    with pytest.raises(DomainError) as refused:
        await store.kick(code, host.user_id, fan)  # kicked already
    assert refused.value.code is ErrorCode.MEMBER_NOT_FOUND


async def test_lifecycle_events_carry_aud_in_audience_rooms_only(
    store: RoomStore, redis_client: aioredis.Redis
) -> None:
    for options, aud in ((AUDIENCE, 1), (RoomOptions(), 0)):
        host = await store.create_room("Host", options=options)
        code = host.room_code
        guest = await store.join_room(code, "P1")
        await store.connect(code, guest.user_id, "s1")
        await store.set_lock(code, host.user_id, "lock")
        await store.transfer_host(code, host.user_id, guest.user_id)
        await store.disconnect(code, guest.user_id, "s1")
        await store.leave(code, host.user_id)
        await store.set_state(code, guest.user_id, "k", "1")  # "all": members only
        for msg in await history(redis_client, code):
            event = msg.frame()["event"]
            assert msg.aud == (0 if event == "state:changed" else aud), (options, event)
        await store.close_room(code, None)


async def test_one_read_serves_many_viewers(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Host", options=AUDIENCE)
    code = host.room_code
    fans = [(await store.join_audience(code, f"F{i}", 10)).user_id for i in range(3)]
    await store.set_state(code, host.user_id, "stage", '{"round":1}', visible_to="audience")
    await store.set_state(code, host.user_id, "secret", "1", visible_to="host")
    await store.open_poll(code, host.user_id, "p1", ["a", "b"])
    await store.vote(code, fans[1], "p1", "b")
    await store.kick(code, host.user_id, fans[2])
    view = await store.audience_snapshots(code, [*fans, "nobody"])
    assert view.viewers == {fans[0]: ("F0", None), fans[1]: ("F1", "b")}  # the kicked and unknown: absent
    assert list(view.base.state) == ["stage"] and [u["id"] for u in view.base.users] == [host.user_id]
    poll = view.base.extra["poll"]
    assert poll["pollId"] == "p1" and poll["vote"] is None and "counts" not in poll
    single = await store.audience_snapshot(code, fans[1])
    assert single.extra["poll"]["vote"] == "b" and single.state == view.base.state and single.seq == view.base.seq
    assert (await store.audience_snapshots(code, [])).viewers == {}
    with pytest.raises(DomainError) as refused:
        await store.audience_snapshots("ZZZZ", fans)
    assert refused.value.code is ErrorCode.ROOM_NOT_FOUND
