"""roomd.domain.keys names exactly what the Lua scripts write, and the README documents each name."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import redis.asyncio as aioredis

from roomd.domain import keys
from roomd.domain.store import RoomOptions, RoomStore
from roomd.domain.throttle import Throttle

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


async def test_the_scripts_write_the_keys_this_module_names(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Ana")
    code = host.room_code
    guest = await store.join_room(code, "Bo")
    await store.set_state(code, host.user_id, "k", "1")
    hostless = await store.create_room("Cy", options=RoomOptions(host_migration="disconnect"))
    await store.connect(hostless.room_code, hostless.user_id, "s")
    await store.disconnect(hostless.room_code, hostless.user_id, "s")
    written = {k.decode() for k in await redis_client.keys("*")}
    room = {keys.room_key(code), keys.users_key(code), keys.user_key(host.user_id), keys.user_key(guest.user_id)}
    room |= {keys.history_key(code), keys.state_key(code), keys.values_key(code)}
    other = {keys.room_key(hostless.room_code), keys.users_key(hostless.room_code), keys.user_key(hostless.user_id),
             keys.history_key(hostless.room_code)}  # fmt: skip
    assert room | other | {keys.INDEX_KEY, keys.EXPIRY_KEY, keys.HOSTLESS_KEY} <= written
    unnamed = written - room - other - {keys.INDEX_KEY, keys.EXPIRY_KEY, keys.INCARNATIONS_KEY, keys.HOSTLESS_KEY}
    assert not unnamed, "every key the scripts write is named in roomd.domain.keys (add a new one there)"
    assert await redis_client.zscore(keys.INDEX_KEY, code) is not None
    assert await redis_client.zscore(keys.EXPIRY_KEY, code) is not None


async def test_events_are_published_on_the_channel_this_module_names(
    store: RoomStore, redis_client: aioredis.Redis
) -> None:
    host = await store.create_room("Ana")
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.channel(host.room_code))
    try:
        await store.set_lock(host.room_code, host.user_id, "lock")
        message = None
        async with asyncio.timeout(5):
            while message is None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        assert b'"room:lock_toggled"' in message["data"]
        assert keys.room_of_channel(message["channel"].decode()) == host.room_code
    finally:
        await pubsub.aclose()


async def test_throttle_counters_use_the_throttle_prefix(redis_client: aioredis.Redis) -> None:
    await Throttle(redis_client, limit=5, window_ms=60_000).hit("203.0.113.9")
    written = [k.decode() for k in await redis_client.keys("*")]
    assert len(written) == 1 and written[0].startswith(f"{keys.THROTTLE_PREFIX}203.0.113.9:")


def test_room_of_channel_inverts_channel_and_refuses_other_names() -> None:
    for code in ("ABCD", "A:B", "X"):
        assert keys.room_of_channel(keys.channel(code)) == code
    for other in (keys.room_key("ABCD"), keys.users_key("ABCD"), keys.bus_self_channel("00ff"), "events"):
        assert keys.room_of_channel(other) is None
    assert keys.bus_self_channel("00ff").startswith(keys.BUS_SELF_PREFIX)


def test_every_key_is_in_the_readme_redis_table() -> None:
    documented = set(re.findall(r"^\| (?:channel )?`([^`]+)` \|", README, re.MULTILINE))
    for name in (
        keys.room_key("{code}"),
        keys.users_key("{code}"),
        keys.user_key("{userId}"),
        keys.channel("{code}"),
        keys.INDEX_KEY,
        keys.EXPIRY_KEY,
        keys.INCARNATIONS_KEY,
        keys.INSTANCES_KEY,
        keys.instance_sockets_key("{id}"),
        f"{keys.THROTTLE_PREFIX}{{client}}:{{window}}",
        keys.bus_self_channel("{id}"),
    ):
        assert name in documented, name
