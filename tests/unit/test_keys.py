"""roomd.domain.keys owns every name: the scripts write exactly the keys it names, touch only
the KEYS they are given (all of one room in one cluster slot), the README documents each name,
REDIS_KEY_PREFIX prefixes everything, and the store runs on a real Redis Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from roomd.config import from_env
from roomd.domain import keys
from roomd.domain.overview import Overview
from roomd.domain.redis_target import target_from_settings
from roomd.domain.store import INDEX_SCRIPTS, ROOM_SCRIPTS, RoomOptions, RoomStore, script_text
from roomd.domain.throttle import Throttle
from tests.support.processes import RedisServer
from tests.support.redis_ha import ClusterServers
from tests.support.schedule import scheduled

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
L = keys.Layout()


async def workload(store: RoomStore, client: Any, throttle: Throttle) -> list[str]:
    """Every script at least once (create ... expire, reap, host grace, throttle); the codes of its rooms."""
    store.instance_id = "live:1:1:a"
    dead = RoomStore(client, ttl_seconds=600, layout=store.keys, sharded_pubsub=store.sharded_pubsub)
    dead.instance_id = "dead:2:2:b"
    host = await store.create_room("Ana", options=RoomOptions(host_migration="disconnect"))
    code = host.room_code
    guest = await store.join_room(code, "Bo")
    third = await store.join_room(code, "Cy")
    await store.connect(code, host.user_id, "s1")
    await store.connect(code, guest.user_id, "s2")
    await store.connect_since(code, guest.user_id, "s3", 1)  # replaces s2; a replay from the history
    await dead.connect(code, third.user_id, "s4")
    await store.snapshot(code, guest.user_id, "s3")
    await store.set_state(code, host.user_id, "k", '{"v":1}', visible_to=[guest.user_id])
    await store.delete_state(code, None, "k")
    await store.send_game_message(code, guest.user_id, "host", "t", "[1]")
    await store.set_lock(code, host.user_id, "lock")
    await store.transfer_host(code, host.user_id, guest.user_id)
    await store.transfer_host(code, None, host.user_id)
    await store.disconnect(code, host.user_id, "s1")  # the host goes: the room is hostless
    assert await store.migrate_absent_hosts(0) == [code]  # guest inherits (host_grace)
    await store.heartbeat()
    await client.zadd(store.keys.instances, {dead.instance_id: 1})  # dead long ago
    assert await store.reap_instance(dead.instance_id) == 1
    await store.extend(code)
    await store.kick(code, guest.user_id, third.user_id)
    await store.leave(code, host.user_id)
    idle = await store.create_room("Idle")
    assert await store.close_if_idle(idle.room_code, 1) is False  # changed since
    expired = await store.create_room("Old")
    member = await scheduled(client, expired.room_code, store.keys)
    await client.delete(store.keys.room(expired.room_code))  # as if Redis expired it
    await client.zadd(store.keys.expiry, {member: 0})
    assert await store.expire_due_rooms() == [expired.room_code]
    await store.close_room(code, None)
    await store.close_room(idle.room_code, idle.user_id)
    await throttle.hit("203.0.113.9")
    # The audience and its polls.
    show = await store.create_room("Show", options=RoomOptions(audience=True))
    fan = await store.join_audience(show.room_code, "Fan", 10)
    await store.audience_connect(show.room_code, fan.user_id)
    await store.audience_snapshot(show.room_code, fan.user_id)
    await store.audience_snapshots(show.room_code, [fan.user_id, "nobody"])
    await store.open_poll(show.room_code, show.user_id, "p1", ["a", "b"])
    await store.vote(show.room_code, fan.user_id, "p1", "a")
    await store.vote(show.room_code, fan.user_id, "p1", "b")  # within the interval: a tally is due
    await store.tally_poll(show.room_code)
    await store.close_poll(show.room_code, show.user_id, "p1")
    await store.audience_count(show.room_code)
    await store.lock_audience(show.room_code, show.user_id, True)
    await store.audience_disconnect(show.room_code)
    await store.kick(show.room_code, show.user_id, fan.user_id)
    await store.close_room(show.room_code, None)
    return [code, idle.room_code, expired.room_code, show.room_code]


# -- MONITOR: what each script really touched ------------------------------------------------


def parse_monitor_line(line: str) -> tuple[str, list[str]]:
    """(client kind, argv) of a MONITOR line ``<time> [<db> <client>] "arg" "arg" ...`` (sdscatrepr quoting)."""
    head, _, rest = line.partition("] ")
    kind = head.split(" ")[-1]
    args, i = [], 0
    escapes = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}
    while i < len(rest):
        if rest[i] != '"':
            i += 1
            continue
        i += 1
        out = []
        while rest[i] != '"':
            if rest[i] == "\\":
                nxt = rest[i + 1]
                if nxt == "x":
                    out.append(chr(int(rest[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                out.append(escapes.get(nxt, nxt))
                i += 2
                continue
            out.append(rest[i])
            i += 1
        args.append("".join(out))
        i += 1
    return kind, args


@dataclass
class ScriptCall:
    sha: str
    given: list[str]
    touched: list[tuple[str, list[str]]] = field(default_factory=list)  # (command, its keys)


@contextlib.asynccontextmanager
async def monitored(server: RedisServer) -> AsyncIterator[list[str]]:
    """Every MONITOR line while the block runs (the raw text, quoting intact)."""
    client = aioredis.Redis.from_url(server.url)
    conn = client.connection_pool.make_connection()
    await conn.connect()
    await conn.send_command("MONITOR")
    assert await conn.read_response() == b"OK"
    lines: list[str] = []

    async def read() -> None:
        while True:
            raw = await conn.read_response(timeout=None)
            lines.append(raw.decode() if isinstance(raw, bytes) else str(raw))

    reader = asyncio.create_task(read())
    try:
        yield lines
        marker = "monitor-end-marker"
        await client.get(marker)
        async with asyncio.timeout(5):
            while not any(marker in line for line in lines):
                await asyncio.sleep(0.01)
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        await conn.disconnect()
        await client.aclose()


async def script_calls(lines: list[str], client: aioredis.Redis) -> list[ScriptCall]:
    """Each EVALSHA with the keys of every command its script ran (``COMMAND GETKEYS``)."""
    calls: list[ScriptCall] = []
    for line in lines:
        kind, argv = parse_monitor_line(line)
        if not argv:
            continue
        if kind != "lua":
            if argv[0].upper() == "EVALSHA":
                calls.append(ScriptCall(argv[1], argv[3 : 3 + int(argv[2])]))
            continue
        assert calls, f"a script command before any EVALSHA: {line}"
        command = argv[0].upper()
        if command in ("PUBLISH", "SPUBLISH"):
            found = [argv[1]]  # a channel: it must be given too (SPUBLISH routes by its slot)
        else:
            try:
                found = [k.decode() if isinstance(k, bytes) else k for k in await client.command_getkeys(*argv)]
            except aioredis.ResponseError:  # TIME and other commands without keys
                found = []
        calls[-1].touched.append((command, found))
    return calls


def script_names() -> dict[str, str]:
    return {
        hashlib.sha1(script_text(name, sharded).encode()).hexdigest(): name
        for name in ROOM_SCRIPTS + INDEX_SCRIPTS
        for sharded in (False, True)
    }


async def test_every_script_touches_only_the_keys_it_is_given(redis_server: RedisServer, redis_client) -> None:
    store = RoomStore(redis_client, ttl_seconds=600)
    async with monitored(redis_server) as lines:
        await workload(store, redis_client, Throttle(redis_client, limit=5, window_ms=60_000))
    calls = await script_calls(lines, redis_client)
    names = script_names()
    ran = set()
    for call in calls:
        name = names.get(call.sha, call.sha)
        if not call.touched:
            continue  # NOSCRIPT before the script was loaded: ran again right after
        ran.add(name)
        for command, found in call.touched:
            assert set(found) <= set(call.given), f"{name}: {command} touched {found}, given {call.given}"
        if name in ROOM_SCRIPTS:
            assert len(call.given) == keys.ROOM_KEY_COUNT
            assert len({key_slot(k.encode()) for k in call.given}) == 1, f"{name}: keys of several slots"
    assert ran == set(ROOM_SCRIPTS + INDEX_SCRIPTS), f"not exercised: {set(ROOM_SCRIPTS + INDEX_SCRIPTS) - ran}"


def test_every_key_of_a_room_is_in_the_rooms_slot() -> None:
    for code in ("KXQD", "A", "ZZZZZZ"):
        slots = {key_slot(name.encode()) for name in keys.Layout("app:").room_keys(code)}
        assert slots == {key_slot(code.encode())}
    throttle = keys.Layout("x.").throttle
    assert key_slot(throttle("ws:203.0.113.9", 7).encode()) == key_slot(throttle("ws:203.0.113.9", 6).encode())


# -- the names themselves --------------------------------------------------------------------


async def test_the_scripts_write_the_keys_this_module_names(store: RoomStore, redis_client: aioredis.Redis) -> None:
    host = await store.create_room("Ana")
    code = host.room_code
    await store.join_room(code, "Bo")
    await store.set_state(code, host.user_id, "k", "1")
    hostless = await store.create_room("Cy", options=RoomOptions(host_migration="disconnect"))
    store.instance_id = "a:1:1:x"
    player = await store.join_room(hostless.room_code, "Di")
    await store.connect(hostless.room_code, player.user_id, "p")
    await store.connect(hostless.room_code, hostless.user_id, "s")
    await store.disconnect(hostless.room_code, hostless.user_id, "s")
    written = {k.decode() for k in await redis_client.keys("*")}
    room = set(L.room_keys(code)[:6])
    other = {L.room(hostless.room_code), L.users(hostless.room_code), L.claim(hostless.room_code)}
    other |= {L.history(hostless.room_code)}
    indexes = {L.index, L.expiry, L.hostless, L.instances, L.instance_sockets("a:1:1:x")}
    assert written == room | other | indexes, "every key roomd writes is named in roomd.domain.keys"
    assert await redis_client.zscore(L.index, code) is not None
    assert await redis_client.zscore(L.expiry, await scheduled(redis_client, code)) is not None
    assert await redis_client.zscore(L.hostless, await scheduled(redis_client, hostless.room_code)) is not None


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


async def test_throttle_counters_are_named_by_the_layout(redis_client: aioredis.Redis) -> None:
    await Throttle(redis_client, limit=5, window_ms=60_000).hit("203.0.113.9")
    written = [k.decode() for k in await redis_client.keys("*")]
    assert len(written) == 1 and written[0].startswith(L.throttle_prefix + "{203.0.113.9}:")


def test_room_of_channel_inverts_channel_and_refuses_other_names() -> None:
    for layout in (keys.Layout(), keys.Layout("app1:")):
        for code in ("ABCD", "A:B", "X"):
            assert layout.room_of_channel(layout.channel(code)) == code
        for other in (layout.room("ABCD"), layout.users("ABCD"), layout.bus_self_channel("00ff"), "events"):
            assert layout.room_of_channel(other) is None
        assert layout.bus_self_channel("00ff").startswith(layout.bus_self_prefix)
    assert keys.Layout("app1:").room_of_channel(L.channel("ABCD")) is None  # another deployment's channel


def test_every_key_is_in_the_readme_redis_table() -> None:
    documented = set(re.findall(r"^\| (?:channel )?`([^`]+)` \|", README, re.MULTILINE))
    for name in (
        *L.room_keys("CODE")[:6],
        *L.room_keys("CODE")[7:],  # the audience's and its polls'
        L.channel("CODE"),
        L.index,
        L.expiry,
        L.hostless,
        L.instances,
        L.instance_sockets("<id>"),
        L.throttle("client", "<window>"),  # type: ignore[arg-type]
        L.bus_self_channel("<id>"),
    ):
        assert name in documented, name


def test_the_prefix_is_checked() -> None:
    assert keys.check_prefix("app-1:eu.") == "app-1:eu."
    for wrong in ("a{b}", "a b", "a*", "x" * 65):
        with pytest.raises(ValueError):
            keys.check_prefix(wrong)


async def test_a_prefix_puts_every_key_and_channel_under_it(redis_client: aioredis.Redis) -> None:
    with keys.using("app1:") as layout:
        store = RoomStore(redis_client, ttl_seconds=600)
        assert store.keys == layout and keys.channel("KXQD") == "app1:room:{KXQD}:events"
        pubsub = redis_client.pubsub()
        host = await store.create_room("Ana")
        await pubsub.subscribe(layout.channel(host.room_code))
        try:
            await pubsub.get_message(timeout=1)
            await store.join_room(host.room_code, "Bo")
            message = await pubsub.get_message(timeout=2)
            assert message is not None and b"user:joined" in message["data"]
        finally:
            await pubsub.aclose()
        await Throttle(redis_client, limit=5, window_ms=60_000).hit("198.51.100.1")
        store.instance_id = "a:1:1:x"
        await store.connect(host.room_code, host.user_id, "s")
        await store.heartbeat()
    assert keys.layout() == keys.Layout()  # restored
    written = [k.decode() for k in await redis_client.keys("*")]
    assert written and all(k.startswith("app1:") for k in written), written


def test_from_settings_applies_the_prefix_to_the_process(redis_client: aioredis.Redis) -> None:
    with keys.using(""):
        store = RoomStore.from_settings(redis_client, from_env({"REDIS_KEY_PREFIX": "eu1:"}))
        assert store.keys.prefix == "eu1:" and keys.room_key("KXQD") == "eu1:room:{KXQD}"


# -- a real Redis Cluster ----------------------------------------------------------------------


async def test_the_store_runs_on_a_redis_cluster(redis_cluster: ClusterServers) -> None:
    """Every script on a 3-master cluster (a cross-slot access would fail), events by SPUBLISH
    on the room's shard, read there by SSUBSCRIBE."""
    target = target_from_settings(from_env(redis_cluster.env()))
    client: Any = target.command_client(command_timeout=5, connect_timeout=2)
    try:
        store = RoomStore(client, ttl_seconds=600, sharded_pubsub=True)
        probe = await store.create_room("Probe")
        pubsub = client.pubsub()
        await pubsub.ssubscribe(L.channel(probe.room_code))
        await store.join_room(probe.room_code, "Bo")
        message = None
        async with asyncio.timeout(5):
            while message is None or message["type"] != "smessage":
                message = await pubsub.get_sharded_message(timeout=1)
        assert b'"user:joined"' in message["data"]
        await pubsub.aclose()
        await workload(store, client, Throttle(client, limit=5, window_ms=60_000))
        summary = json.loads(await client.get(L.room(probe.room_code)))
        assert summary["seq"] == 1
        # roomctl's read-only views: pipelines over several slots, one round trip per node.
        overview = Overview(client)
        listed = await overview.all_rooms()
        assert probe.room_code in [r.room["code"] for r in listed]
        assert (await overview.stats()).members >= 2
        assert [m["displayName"] for m in await store.get_members(probe.room_code)] == ["Probe", "Bo"]
    finally:
        await client.aclose()


def test_a_wrong_prefix_stops_roomd_naming_the_variable() -> None:
    from roomd.config import ConfigError

    assert from_env({"REDIS_KEY_PREFIX": "app1:"}).redis_key_prefix == "app1:"
    with pytest.raises(ConfigError, match="REDIS_KEY_PREFIX"):
        from_env({"REDIS_KEY_PREFIX": "a{b}"})
