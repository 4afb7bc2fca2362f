"""roomctl's sysadmin commands: list filters, users find, transfer-host, extend, bulk idle close."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest

from roomd.domain.bus_message import BusMessage
from roomd.domain.errors import DomainError
from roomd.domain.keys import channel, claim_key, expiry_key, index_key, room_key, users_key
from roomd.domain.store import RoomStore
from tests.roomctl.conftest import Roomctl, as_json, room_data_keys
from tests.support.schedule import scheduled

HOUR_MS = 3_600_000


async def age(store: RoomStore, code: str, ms: int) -> None:
    """Pretend the room last changed ``ms`` ago (as if nothing happened since)."""
    raw = await store.client.get(room_key(code))
    room = json.loads(raw)
    room["updatedAt"] = room["createdAt"] = int(time.time() * 1000) - ms
    await store.client.set(room_key(code), json.dumps(room), keepttl=True)


async def next_message(pubsub) -> dict:
    """The next published message (subscribe confirmations skipped), within 10 s."""
    async with asyncio.timeout(10):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                return message


async def codes(roomctl: Roomctl, *args: str) -> list[str]:
    return [r["code"] for r in as_json(await roomctl("rooms", "list", "--json", *args))["rooms"]]


# -- rooms list filters -----------------------------------------------------------


async def test_list_filters(roomctl: Roomctl, store: RoomStore) -> None:
    busy = await store.create_room("Ana")
    await store.connect(busy.room_code, busy.user_id, "s1")
    await asyncio.sleep(0.003)  # creation times are milliseconds: keep the order known
    locked = await store.create_room("Joana")
    await store.set_lock(locked.room_code, None, "lock")
    await asyncio.sleep(0.003)
    idle = await store.create_room("Bob")
    await age(store, idle.room_code, 3 * HOUR_MS)
    assert await codes(roomctl) == [idle.room_code, locked.room_code, busy.room_code]
    assert await codes(roomctl, "--locked") == [locked.room_code]
    assert await codes(roomctl, "--empty") == [idle.room_code, locked.room_code]
    assert await codes(roomctl, "--idle-for", "2h") == [idle.room_code]
    assert await codes(roomctl, "--idle-for", "1h30m", "--locked") == []  # filters combine
    assert await codes(roomctl, "--host-name", "ANA") == [locked.room_code, busy.room_code]  # contains, any case
    assert await codes(roomctl, "--host-name", "joana", "--locked") == [locked.room_code]
    await age(store, busy.room_code, 3 * HOUR_MS)
    assert busy.room_code not in await codes(roomctl, "--idle-for", "2h")  # someone is connected: not idle
    plain = await roomctl("rooms", "list", "--idle-for", "2h")
    assert plain.stdout.splitlines()[1].split("\t")[7] == "3h00m"  # IDLE column


async def test_filtered_paging_hint_repeats_the_filters(roomctl: Roomctl, store: RoomStore) -> None:
    for name in ("Ana", "Anaïs", "Bob", "Joana"):
        await store.create_room(name)
        await asyncio.sleep(0.003)
    first = await roomctl("rooms", "list", "--host-name", "ana", "--limit", "1")
    hint = first.stderr.strip()
    assert hint.startswith("more: roomctl rooms list --limit 1 --host-name ana --cursor "), hint
    seen = [first.stdout.splitlines()[1].split("\t")[1]]
    cursor = hint.rsplit(" ", 1)[1]
    while cursor:
        page = as_json(await roomctl("rooms", "list", "--host-name", "ana", "--limit", "1", "--json",
                                     "--cursor", cursor))  # fmt: skip
        seen += [r["hostName"] for r in page["rooms"]]
        cursor = page["nextCursor"]
    assert seen == ["Joana", "Anaïs", "Ana"]


@pytest.mark.parametrize("value", ["soon", "2x", "-1h", "h"])
async def test_bad_durations_are_usage_errors(roomctl: Roomctl, value: str) -> None:
    result = await roomctl("rooms", "list", "--idle-for", value)
    assert result.exit_code == 2 and "is not a duration" in result.stderr


# -- users find ---------------------------------------------------------------------


async def test_users_find(roomctl: Roomctl, store: RoomStore) -> None:
    first = await store.create_room("Ana")
    bob = await store.join_room(first.room_code, "Bobby")
    second = await store.create_room("Joana")
    await store.connect(second.room_code, second.user_id, "s")
    found = as_json(await roomctl("users", "find", "ANA", "--json"))
    assert [(u["displayName"], u["roomCode"], u["isHost"], u["isConnected"]) for u in found["users"]] == [
        ("Joana", second.room_code, True, True),  # newest room first
        ("Ana", first.room_code, True, False),
    ]
    assert found["truncated"] is False and set(found["users"][0]) == {
        "id", "displayName", "isConnected", "isHost", "joinedAt", "roomCode"}  # fmt: skip
    plain = await roomctl("users", "find", "bob")
    assert plain.stdout.splitlines() == ["ID\tDISPLAY NAME\tROOM\tCONNECTED\tHOST",
                                         f"{bob.user_id}\tBobby\t{first.room_code}\tno\t"]  # fmt: skip
    limited = await roomctl("users", "find", "a", "--limit", "1")
    assert len(limited.stdout.splitlines()) == 2 and "more users match" in limited.stderr
    none = await roomctl("users", "find", "zed")
    assert none.exit_code == 1 and none.stderr == "error: no user's name contains 'zed'\n" and none.stdout == ""


# -- rooms transfer-host ------------------------------------------------------------


async def test_transfer_host(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    pubsub = store.client.pubsub()
    await pubsub.subscribe(channel(host.room_code))
    try:
        done = as_json(await roomctl("rooms", "transfer-host", host.room_code.lower(), "--json", "--",
                                     player.user_id))  # fmt: skip
        assert done == {"code": host.room_code, "hostId": player.user_id, "changed": True}
        assert (await store.get_room(host.room_code))["hostId"] == player.user_id
        frame = BusMessage.decode((await next_message(pubsub))["data"]).frame()
        assert frame["event"] == "room:host_updated"  # as the host's own
        assert frame["data"] == {"hostId": player.user_id, "reason": "TRANSFERRED"}
    finally:
        await pubsub.aclose()
    again = await roomctl("rooms", "transfer-host", host.room_code, "--", player.user_id)
    assert again.exit_code == 0 and "already hosts" in again.stdout
    stranger = await roomctl("rooms", "transfer-host", host.room_code, "nobody")
    assert (
        stranger.exit_code == 1 and stranger.stderr == f"error: user nobody is not a member of room {host.room_code}\n"
    )
    gone = await roomctl("rooms", "transfer-host", "ZZZZ", "nobody")
    assert gone.exit_code == 1 and gone.stderr == "error: room ZZZZ not found\n"


# -- rooms extend -------------------------------------------------------------------


async def test_extend_rearms_every_key_with_the_configured_ttl(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    room = json.loads(await store.client.get(room_key(host.room_code)))
    room.pop("ttlMs", None)  # a record without its own TTL: the configured one applies
    await store.client.set(room_key(host.room_code), json.dumps(room), px=5_000)
    for key in (users_key(host.room_code), claim_key(host.room_code)):
        await store.client.pexpire(key, 5_000)
    result = as_json(await roomctl("rooms", "extend", host.room_code, "--json", env={"ROOM_TTL_SECONDS": "900"}))
    assert result["code"] == host.room_code and result["expiresAt"].endswith("Z")
    for key in (room_key(host.room_code), users_key(host.room_code)):  # members live in the users hash
        assert 890_000 < await store.client.pttl(key) <= 900_000, key
    assert await store.client.pttl(claim_key(host.room_code)) > 900_000  # the claim outlives the room
    assert len(await store.get_members(host.room_code)) == 2 and player.user_id
    after = json.loads(await store.client.get(room_key(host.room_code)))
    assert after["updatedAt"] == room["updatedAt"]  # not a change of the room: idle stays idle
    member = await scheduled(store.client, host.room_code)
    assert abs(await store.client.zscore(expiry_key(), member) - after["expiresAt"]) < 1


async def test_extend_uses_the_rooms_own_ttl(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    room = json.loads(await store.client.get(room_key(host.room_code)))
    room["ttlMs"] = 120_000  # the room's own rule, as roomd records it
    await store.client.set(room_key(host.room_code), json.dumps(room), px=5_000)
    done = await roomctl("rooms", "extend", host.room_code, env={"ROOM_TTL_SECONDS": "900"})
    assert done.exit_code == 0 and f"room {host.room_code} now expires at " in done.stdout
    assert 110_000 < await store.client.pttl(room_key(host.room_code)) <= 120_000


async def test_extend_sends_no_event(store: RoomStore) -> None:
    host = await store.create_room("Ana")
    pubsub = store.client.pubsub()
    await pubsub.subscribe(channel(host.room_code))
    try:
        await store.extend(host.room_code)
        await store.client.publish(channel(host.room_code), "marker")  # a later message through the same path
        assert (await next_message(pubsub))["data"] == b"marker"
    finally:
        await pubsub.aclose()


async def test_extend_unknown_room(roomctl: Roomctl) -> None:
    result = await roomctl("rooms", "extend", "ZZZZ")
    assert result.exit_code == 1 and result.stderr == "error: room ZZZZ not found\n"


async def test_extend_never_revives_a_room_closed_at_the_same_time(store: RoomStore) -> None:
    rooms = [await store.create_room(f"Host{n}") for n in range(40)]
    for r in rooms:
        await store.join_room(r.room_code, "Bob")

    async def extend(code: str) -> None:
        with contextlib.suppress(DomainError):  # closed first
            await store.extend(code)

    await asyncio.gather(*(f for r in rooms for f in (store.close_room(r.room_code, None), extend(r.room_code))))
    assert await room_data_keys(store) == []  # no room, member set or user key left behind, no expiry entry


# -- rooms close --idle-for ---------------------------------------------------------


async def test_close_idle_rooms(roomctl: Roomctl, store: RoomStore) -> None:
    idle = await store.create_room("Idle")
    await age(store, idle.room_code, 3 * HOUR_MS)
    busy = await store.create_room("Busy")
    await store.connect(busy.room_code, busy.user_id, "s")
    await age(store, busy.room_code, 3 * HOUR_MS)  # old, but someone is connected
    fresh = await store.create_room("Fresh")
    refused = await roomctl("rooms", "close", "--idle-for", "2h", input="n\n")
    assert refused.exit_code == 1 and f"Close 1 room(s) idle for 2h ({idle.room_code})?" in refused.stderr
    assert await store.client.exists(room_key(idle.room_code))
    done = as_json(await roomctl("rooms", "close", "--idle-for", "2h", "--yes", "--json"))
    assert done == {"closed": [idle.room_code], "skipped": []}
    assert not await store.client.exists(room_key(idle.room_code))
    assert await store.client.zscore(index_key(), idle.room_code) is None
    assert await store.client.exists(room_key(busy.room_code), room_key(fresh.room_code)) == 2
    nothing = await roomctl("rooms", "close", "--idle-for", "2h", "--yes")
    assert nothing.exit_code == 0 and nothing.stdout == "0 room(s) idle for 2h closed\n"


@pytest.mark.parametrize("args", [["rooms", "close"], ["rooms", "close", "ABCD", "--idle-for", "1h"]])
async def test_close_needs_a_code_or_idle_for(roomctl: Roomctl, args: list[str]) -> None:
    result = await roomctl(*args, "--yes")
    assert result.exit_code == 2 and "give a room CODE or --idle-for DURATION" in result.stderr


async def test_close_if_idle_checks_and_closes_atomically(store: RoomStore) -> None:
    """A member connecting at the very moment of the idle close: either they are in, or the room is gone."""
    rooms = [await store.create_room(f"Host{n}") for n in range(40)]
    since = int(time.time() * 1000) + 60_000  # every room counts as unchanged since then

    async def connect(code: str, user_id: str) -> bool:
        try:
            await store.connect(code, user_id, "s")
            return True
        except DomainError:
            return False

    results = await asyncio.gather(
        *(f for r in rooms for f in (store.close_if_idle(r.room_code, since), connect(r.room_code, r.user_id)))
    )
    for n, r in enumerate(rooms):
        closed, connected = results[2 * n], results[2 * n + 1]
        assert closed != connected, r.room_code  # never both: a connected member is never closed out as idle
        assert bool(await store.client.exists(room_key(r.room_code))) == connected


async def test_close_if_idle_leaves_a_room_that_changed(store: RoomStore) -> None:
    room = await store.create_room("Ana")
    before = int(time.time() * 1000) - 1
    await asyncio.sleep(0.005)
    await store.set_lock(room.room_code, None, "lock")  # a change after the cut-off
    assert await store.close_if_idle(room.room_code, before) is False
    assert await store.close_if_idle("ZZZZ", before) is False
    assert await store.close_if_idle(room.room_code, int(time.time() * 1000) + 1) is True
