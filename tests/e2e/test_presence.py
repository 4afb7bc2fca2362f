"""Presence that outlives its owner: killed instances, Redis stalls, reused room codes.

Each test reproduces a failure found under attack (issue 10, items 1.2 and 1.4)
with real roomd processes and a real Redis.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio.cluster import RedisCluster

from roomd.domain.keys import channel, expiry_key, instance_sockets_key, instances_key, layout, room_key, users_key
from roomd.domain.store import RoomStore, make_redis_client
from tests.support.clients import Api, Socket, http
from tests.support.processes import RedisServer, RoomdProcess

FAST = {"INSTANCE_TIMEOUT_MS": "1000"}  # a dead instance is noticed within a few seconds


async def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll an async ``check`` until it returns something truthy (generous bound, not a timing claim)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)


def kill(process: RoomdProcess) -> None:
    """kill -9: no drain, no disconnect, nothing written to Redis."""
    assert process.process is not None
    process.signal(signal.SIGKILL)
    process.process.wait(10)


async def test_members_of_a_killed_instance_become_disconnected(spawn_roomd, redis_client) -> None:
    a: RoomdProcess = spawn_roomd(**FAST)
    b: RoomdProcess = spawn_roomd(**FAST)
    spawn_roomd(**FAST)  # a third instance reaping concurrently with B
    host = await Api(b.http).create("Bea")
    code = host["roomCode"]
    ghost = await Api(b.http).join(code, "Gus")
    hs = await Socket.connect(b.ws, host["token"])
    await hs.expect("room:state")
    gs = await Socket.connect(a.ws, ghost["token"])  # held by A
    await gs.expect("room:state")
    assert (await hs.expect("user:connected"))["user"]["id"] == ghost["userId"]

    kill(a)
    gone = await hs.expect("user:disconnected", timeout=20)
    assert gone["user"] == {"id": ghost["userId"], "displayName": "Gus", "isConnected": False, "isHost": False}
    # A newcomer's room:state agrees, and so does Redis.
    late = await Api(b.http).join(code, "Lia")
    ls = await Socket.connect(b.ws, late["token"])
    state = await ls.expect("room:state")
    assert {u["displayName"]: u["isConnected"] for u in state["users"]} == {"Bea": True, "Gus": False, "Lia": True}
    user = json.loads(await redis_client.hget(users_key(code), ghost["userId"]))
    assert user["isConnected"] is False and user["socketId"] == ""
    # The dead instance is gone from the heartbeat set once reaped, with its socket index.
    instances = [i.decode() for i in await redis_client.zrange(instances_key(), 0, -1)]
    assert not [i for i in instances if f":{a.port}:" in i]
    indexes = await redis_client.keys(instance_sockets_key("*"))
    assert not indexes or all(f":{a.port}:" not in k.decode() for k in indexes)
    # Exactly one user:disconnected (two live instances reaped): the next frames up to a later
    # marker (the newcomer's join) hold no second one.
    while (frame := await hs.next_event())["event"] != "user:joined":
        assert frame["event"] != "user:disconnected", frame
    assert frame["data"]["user"]["id"] == late["userId"]


async def test_host_role_never_passes_to_a_member_of_a_dead_instance(spawn_roomd, redis_client) -> None:
    """The host leaves while an older member is a ghost of a killed instance not reaped yet."""
    a: RoomdProcess = spawn_roomd()  # default staleness bound (15 s): B does not reap during this test
    b: RoomdProcess = spawn_roomd()
    host = await Api(b.http).create("Hana")
    code = host["roomCode"]
    ghost = await Api(b.http).join(code, "Gus")  # older than the live member
    live = await Api(b.http).join(code, "Liv")
    hs = await Socket.connect(b.ws, host["token"])
    await hs.expect("room:state")
    gs = await Socket.connect(a.ws, ghost["token"])
    await gs.expect("room:state")
    ls = await Socket.connect(b.ws, live["token"])
    await ls.expect("room:state")
    assert a.process is not None
    pid = a.process.pid
    kill(a)
    # Make A's heartbeat stale at once instead of waiting 15 s.
    ids = [i.decode() for i in await redis_client.zrange(instances_key(), 0, -1)]
    dead = [i for i in ids if f":{pid}:{a.port}" in i]
    assert len(dead) == 1, ids
    await redis_client.zadd(instances_key(), {dead[0]: 1})
    ghost_record = json.loads(await redis_client.hget(users_key(code), ghost["userId"]))
    assert ghost_record["isConnected"] is True  # not reaped yet

    await hs.send("room:leave")
    assert await ls.expect("room:host_updated") == {"hostId": live["userId"], "reason": "HOST_LEFT"}
    # Now the live member can act as host.
    await ls.send("room:toggle_lock")
    assert await ls.expect("room:lock_toggled") == {"isLocked": True}


async def test_a_disconnect_during_a_redis_pause_is_retried(spawn_roomd, private_redis) -> None:
    redis: RedisServer = private_redis()
    server: RoomdProcess = spawn_roomd(redis.url, REDIS_COMMAND_TIMEOUT="300", **FAST)
    host = await Api(server.http).create("Ana")
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    redis.pause()
    try:
        hs.conn.close()  # the disconnect script cannot run: Redis does not answer

        async def failed() -> bool:
            return "could not mark a user disconnected" in server.logs()

        await eventually(failed, timeout=20)
    finally:
        redis.resume()
    client = make_redis_client(redis.url, command_timeout=5)
    try:

        async def disconnected() -> bool:
            return json.loads(await client.hget(users_key(host["roomCode"]), host["userId"]))["isConnected"] is False

        await eventually(disconnected, timeout=20)
    finally:
        await client.aclose()


async def test_a_reused_code_waits_for_the_expiry_sweep(spawn_roomd, redis_client) -> None:
    """Two codes (A, B), B held by a long-lived room: A is the only code roomd can hand out."""
    server: RoomdProcess = spawn_roomd(ROOM_CODE_ALPHABET="AB", ROOM_CODE_LENGTH="1", ROOM_TTL_SECONDS="2")
    filler = RoomStore(redis_client, ttl_seconds=600, code_alphabet="B", code_length=1)
    await filler.create_room("Filler")
    api = Api(server.http)
    old = await api.create("Old")
    assert old["roomCode"] == "A"
    olds = await Socket.connect(server.ws, old["token"])
    await olds.expect("room:state")

    async def expired() -> bool:
        return not await redis_client.exists(room_key("A"))  # EXISTS also expires the key at its deadline

    await eventually(expired, timeout=20, interval=0.005)

    async def created() -> dict[str, Any] | None:
        r = await http(server.http, "POST", "/rooms", {"displayName": "New"})
        assert r.status in (201, 503), r.body
        return r.body if r.status == 201 else None

    new = await eventually(created, timeout=20)
    assert new["roomCode"] == "A"
    player = await api.join("A", "Pia")
    ns = await Socket.connect(server.ws, new["token"])
    await ns.expect("room:state")
    ps = await Socket.connect(server.ws, player["token"])
    await ps.expect("room:state")
    # The old room's member got its room:closed before anything of the new room.
    assert await olds.next_event(timeout=10) == {"event": "room:closed", "data": {"reason": "EXPIRED"}}
    assert await olds.closed() == 4410


async def test_a_socket_never_receives_another_incarnations_events(spawn_roomd, redis_client) -> None:
    """The old room's keys vanish without a sweep (an operator's DEL): the code is reused at once."""
    server: RoomdProcess = spawn_roomd(ROOM_CODE_ALPHABET="AB", ROOM_CODE_LENGTH="1")
    filler = RoomStore(redis_client, ttl_seconds=600, code_alphabet="B", code_length=1)
    await filler.create_room("Filler")
    api = Api(server.http)
    old = await api.create("Old")
    assert old["roomCode"] == "A"
    olds = await Socket.connect(server.ws, old["token"])
    await olds.expect("room:state")
    old_room = json.loads(await redis_client.get(room_key("A")))
    await redis_client.delete(*layout().room_keys("A")[:6])  # record, members, claim...: the code is free
    await redis_client.zrem(expiry_key(), f"A|{old_room['incarnation']}")

    new = await api.create("New")
    assert new["roomCode"] == "A"
    ns = await Socket.connect(server.ws, new["token"])
    await ns.expect("room:state")
    for i in range(3):  # enough events to pass the old socket's sequence number
        player = await api.join("A", f"P{i}")
        ps = await Socket.connect(server.ws, player["token"])
        await ps.expect("room:state")
    await ns.send("room:toggle_lock")
    await ns.expect("room:lock_toggled")
    # A marker of the old incarnation: the old socket's next frame must be it.
    marker = {"event": "room:lock_toggled", "data": {"isLocked": True}}
    meta = {"inc": old_room.get("incarnation")}
    sharded = isinstance(redis_client, RedisCluster)  # the cluster run: roomd listens with SSUBSCRIBE
    await (redis_client.spublish if sharded else redis_client.publish)(
        channel("A"), json.dumps(meta) + "\n" + json.dumps(marker)
    )
    assert await olds.next_event() == marker


async def test_a_missed_disconnect_is_healed_by_reconciliation(spawn_roomd, redis_client) -> None:
    """A user recorded as connected through a live instance that does not hold the socket."""
    server: RoomdProcess = spawn_roomd(**FAST)
    api = Api(server.http)
    host = await api.create("Ana")
    code = host["roomCode"]
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    player = await api.join(code, "Bob")
    instance = json.loads(await redis_client.hget(users_key(code), host["userId"]))["instance"]
    # Forge what a lost disconnect leaves behind: connected on a socket this instance does not hold.
    user = json.loads(await redis_client.hget(users_key(code), player["userId"]))
    user.update(isConnected=True, socketId="feedfacefeedface", instance=instance)
    await redis_client.hset(users_key(code), player["userId"], json.dumps(user))
    await redis_client.sadd(instance_sockets_key(instance), f"{code}|{player['userId']}|feedfacefeedface")
    gone = await hs.expect("user:disconnected", timeout=20)
    assert gone["user"]["id"] == player["userId"]
    assert json.loads(await redis_client.hget(users_key(code), player["userId"]))["isConnected"] is False


async def test_a_reaped_instance_that_comes_back_closes_its_stale_sockets(spawn_roomd, redis_client) -> None:
    """SIGSTOP longer than the staleness bound: B reaps A; A resumes and tells its clients to reconnect."""
    a: RoomdProcess = spawn_roomd(**FAST)
    b: RoomdProcess = spawn_roomd(**FAST)
    host = await Api(b.http).create("Bea")
    member = await Api(b.http).join(host["roomCode"], "Max")
    hs = await Socket.connect(b.ws, host["token"])
    await hs.expect("room:state")
    ms = await Socket.connect(a.ws, member["token"])
    await ms.expect("room:state")
    a.signal(signal.SIGSTOP)
    try:
        gone = await hs.expect("user:disconnected", timeout=20)
        assert gone["user"]["id"] == member["userId"]
    finally:
        a.signal(signal.SIGCONT)
    assert await ms.closed(timeout=20) == 1001  # reconnect: the socket is no longer this instance's
    again = await Socket.connect(b.ws, member["token"])
    state = await again.expect("room:state")
    assert {u["displayName"]: u["isConnected"] for u in state["users"]} == {"Bea": True, "Max": True}
