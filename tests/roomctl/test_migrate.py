"""The previous key layout: roomd refuses to start on it, ``roomctl migrate`` converts it.

Every test here takes a private redis-server: the shared roomd sweeps the shared one, and
its sweeps would act on the previous layout's index entries while the test looks at them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from click.testing import Result

from roomd.domain import keys
from roomd.domain.bus_message import BusMessage
from roomd.domain.keys import Layout, Legacy
from roomd.domain.layout import old_layout_rooms
from roomd.domain.store import Resumed, RoomStore, make_redis_client
from tests.roomctl.conftest import as_json, invoke
from tests.support.old_layout import expire_old_room, write_old_room
from tests.support.processes import RedisServer
from tests.support.schedule import scheduled


@pytest.fixture
async def old_redis(private_redis: Callable[..., RedisServer]) -> AsyncIterator[tuple[RedisServer, aioredis.Redis]]:
    server = private_redis()
    client = make_redis_client(server.url, command_timeout=5)
    yield server, client
    await client.aclose()


async def roomctl_on(server: RedisServer, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return await asyncio.to_thread(invoke, "--redis-url", server.url, *args, env=env)


async def test_roomd_refuses_to_start_on_the_previous_layout(old_redis, spawn_roomd) -> None:
    server, client = old_redis
    await write_old_room(client, "KXQD", ["Ana", "Bob"], connected=1)
    assert await old_layout_rooms(client) == ["KXQD"]
    roomd = spawn_roomd(server.url, wait=False)
    code = await asyncio.to_thread(roomd.process.wait, 20)
    assert code == 2
    refusal = [line for line in roomd.logs().splitlines() if line.startswith("roomd: ")]
    assert len(refusal) == 1 and "previous key layout (KXQD)" in refusal[0] and "roomctl migrate" in refusal[0]
    # Nothing of the previous layout was touched (no sweep ran).
    assert await client.exists(Legacy.room("KXQD"), Legacy.INCARNATIONS, Legacy.INDEX, Legacy.EXPIRY) == 4
    assert await client.zscore(Legacy.INSTANCES, "old:1:1:zz") is not None


async def test_migrate_converts_every_room_and_roomd_serves_them(old_redis, spawn_roomd) -> None:
    server, client = old_redis
    old = await write_old_room(client, "KXQD", ["Ana", "Bob", "Cy"], connected=2, ttl_ms=900_000)
    hostless = await write_old_room(client, "HSTL", ["Di", "Ed"], host_migration="disconnect", with_state=False)
    gone = await write_old_room(client, "GONE", ["Fay"])
    await expire_old_room(client, gone)
    dry = as_json(await roomctl_on(server, "migrate", "--dry-run", "--json"))
    assert dry == {"dryRun": True, "migrated": ["HSTL", "KXQD"], "members": 5, "dropped": ["GONE"], "conflicts": []}
    assert await old_layout_rooms(client) == ["GONE", "HSTL", "KXQD"]  # a dry run changes nothing

    done = as_json(await roomctl_on(server, "migrate", "--yes", "--json"))
    assert done == {**dry, "dryRun": False}
    assert await old_layout_rooms(client) == []
    leftovers = [k.decode() for k in await client.keys("*")]
    assert not [k for k in leftovers if k.startswith("user:") or ("{" not in k and k.startswith("room:"))], leftovers
    assert not await client.exists(Legacy.INCARNATIONS, Legacy.instance_sockets("old:1:1:zz"))

    L = Layout()
    store = RoomStore(client, ttl_seconds=60)  # other rules than the room's: the room keeps its own
    room = await store.get_room("KXQD")
    assert room["hostId"] == old.host and room["memberCount"] == 3
    members = await store.get_members("KXQD")
    assert [m["id"] for m in members] == old.members and not any(m["isConnected"] for m in members)
    assert 800_000 < await client.pttl(L.room("KXQD")) <= 900_000  # the remaining TTL
    assert 800_000 < await client.pttl(L.users("KXQD")) <= 900_000
    assert json.loads(await client.get(L.claim("KXQD"))) == {"incarnation": old.incarnation,
                                                               "createdAt": old.created_at}  # fmt: skip
    assert await client.zscore(L.index, "KXQD") == old.created_at
    assert (await store.get_state("KXQD"))["score"]["value"] == [1]
    resumed = await store.connect_since("KXQD", old.members[1], "new-socket", 1)  # the history came along
    assert isinstance(resumed, Resumed) and [BusMessage.decode(m).seq for m in resumed.messages] == [2, 3]
    assert resumed.incarnation == old.incarnation
    assert json.loads(await client.get(L.room("HSTL")))["hostAwaySince"] > 0  # the grace starts now...
    assert await client.zscore(L.hostless, await scheduled(client, "HSTL")) is not None  # ...and is swept
    assert not await client.exists(L.room("GONE"), L.claim("GONE"))
    assert await client.zscore(L.index, "GONE") is None
    assert hostless.code == "HSTL"

    scheduled_before = await client.zrange(L.expiry, 0, -1, withscores=True)
    again = as_json(await roomctl_on(server, "migrate", "--yes", "--json"))  # safe to run again
    assert again == {"dryRun": False, "migrated": [], "members": 0, "dropped": [], "conflicts": []}
    assert await client.zrange(L.expiry, 0, -1, withscores=True) == scheduled_before
    spawn_roomd(server.url)  # starts: healthy
    await store.close_room("KXQD", None)


async def test_migrate_refuses_while_roomd_runs(old_redis) -> None:
    server, client = old_redis
    await write_old_room(client, "KXQD", ["Ana"])
    seconds, micros = await client.time()
    await client.zadd(Legacy.INSTANCES, {"live:2:2:yy": seconds * 1000 + micros // 1000})
    result = await roomctl_on(server, "migrate", "--yes")
    assert result.exit_code == 1 and "roomd is running (live:2:2:yy)" in result.stderr
    assert await old_layout_rooms(client) == ["KXQD"]


async def test_migrate_asks_first(old_redis) -> None:
    server, client = old_redis
    await write_old_room(client, "KXQD", ["Ana"])
    result = await asyncio.to_thread(invoke, "--redis-url", server.url, "migrate", input="n\n")
    assert result.exit_code == 1 and "nothing changed" in result.stderr
    assert await old_layout_rooms(client) == ["KXQD"]


async def test_migrate_into_a_prefix(old_redis) -> None:
    server, client = old_redis
    await write_old_room(client, "KXQD", ["Ana", "Bob"])
    done = as_json(await roomctl_on(server, "migrate", "--yes", "--json", env={"REDIS_KEY_PREFIX": "eu1:"}))
    assert done["migrated"] == ["KXQD"]
    written = sorted(k.decode() for k in await client.keys("*"))
    assert written and all(k.startswith("eu1:") for k in written), written
    with keys.using("eu1:") as layout:
        assert len(await RoomStore(client, ttl_seconds=60).get_members("KXQD")) == 2
        assert await client.zscore(layout.expiry, await scheduled(client, "KXQD", layout)) is not None


def test_roomctl_leaves_the_tests_key_layout_as_it_was() -> None:
    assert keys.layout() == Layout()  # test_migrate_into_a_prefix ran roomctl with REDIS_KEY_PREFIX in-process
