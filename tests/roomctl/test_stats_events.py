"""roomctl stats and events against the private redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from click.testing import Result

from roomd.domain.keys import channel, index_key, instances_key, room_key
from roomd.domain.store import RoomStore
from tests.roomctl.conftest import Roomctl, as_json


async def test_stats(roomctl: Roomctl, store: RoomStore, redis_client) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    gone = await store.create_room("Gone")
    await redis_client.delete(room_key(gone.room_code))  # expired: neither counted nor listed again
    await store.create_room("Solo")
    await store.connect(host.room_code, player.user_id, "s")
    now = int(time.time() * 1000)
    instances = {"web1:42:3000": now, "web3:9:3000": now - 1000, "web2:7:3000": now - 60_000}  # web2 is stale
    await redis_client.zadd(instances_key(), instances)
    result = as_json(await roomctl("stats", "--json"))
    assert (result["rooms"], result["members"], result["connectedMembers"]) == (2, 3, 1)
    assert [i["id"] for i in result["instances"]] == ["web1:42:3000", "web3:9:3000"]  # by id
    plain = await roomctl("stats")
    lines = plain.stdout.splitlines()
    assert lines[:4] == ["rooms\t2", "members\t3", "connected\t1", "instances\t2"]
    assert lines[5].startswith("web1:42:3000\t") and lines[5].endswith(" ago")


async def test_stats_walks_every_page(roomctl: Roomctl, store: RoomStore, redis_client) -> None:
    async with redis_client.pipeline(transaction=False) as pipe:  # more rooms than one stats chunk (500)
        for n in range(1200):
            pipe.set(room_key(f"R{n}"), json.dumps({"code": f"R{n}", "hostId": "x", "createdAt": n}))
            pipe.zadd(index_key(), {f"R{n}": n % 7})  # many equal scores: paging must not skip nor repeat
        await pipe.execute()
    assert as_json(await roomctl("--json", "stats"))["rooms"] == 1200


STOP = '{}\n{"event": "room:closed", "data": {"reason": "ADMIN_CLOSED"}}'


@contextlib.asynccontextmanager
async def following(roomctl: Roomctl, store: RoomStore, code: str, *args: str) -> AsyncIterator[asyncio.Task[Result]]:
    """``roomctl events CODE`` running in a thread, subscribed; stopped even if the test fails."""
    task = asyncio.create_task(roomctl("events", code, *args))
    name = channel(code.upper())
    try:
        for _ in range(250):
            if (await store.client.pubsub_numsub(name))[0][1] or task.done():
                break
            await asyncio.sleep(0.02)
        yield task
    finally:
        while not task.done():  # a room:closed frame ends the follower (a thread cannot be cancelled)
            await store.client.publish(name, STOP)
            await asyncio.wait([task], timeout=0.5)


async def test_events_json_until_closed(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    async with following(roomctl, store, host.room_code.lower(), "--json") as task:
        await store.set_lock(host.room_code, host.user_id)
        await store.kick(host.room_code, None, player.user_id)
        await store.close_room(host.room_code, None)
        result = await asyncio.wait_for(task, 10)
    assert result.exit_code == 0  # the room closed: done
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["event"], e["data"]) for e in lines] == [
        ("room:lock_toggled", {"isLocked": True}),
        ("user:left", {"userId": player.user_id, "reason": "KICKED"}),  # the frame the others got, not the direct one
        ("room:closed", {"reason": "ADMIN_CLOSED"}),
    ]
    assert all(set(e) == {"ts", "event", "data"} and e["ts"].endswith("Z") for e in lines)


async def test_events_plain_and_count(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    async with following(roomctl, store, host.room_code, "--count", "1") as task:
        await store.set_lock(host.room_code, None, "lock")
        result = await asyncio.wait_for(task, 10)
    assert result.exit_code == 0 and "\x1b[" not in result.output
    stamp, event, data = result.stdout.rstrip("\n").split("\t")
    assert stamp.endswith("Z") and (event, json.loads(data)) == ("room:lock_toggled", {"isLocked": True})
    assert result.stderr == f"following room {host.room_code} (Ctrl-C to stop)\n"


async def test_events_unknown_room_is_exit_1(roomctl: Roomctl) -> None:
    result = await roomctl("events", "ZZZZ")
    assert result.exit_code == 1 and result.stderr == "error: room ZZZZ not found\n"
