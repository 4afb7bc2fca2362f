"""roomctl rooms list/show/close/lock/unlock against the private redis-server."""

from __future__ import annotations

import asyncio

import pytest

from roomd.domain.keys import index_key, room_key
from roomd.domain.store import RoomStore
from tests.roomctl.conftest import Roomctl, as_json, room_data_keys


async def create_rooms(store: RoomStore, count: int) -> list[str]:
    codes = []
    for i in range(count):
        codes.append((await store.create_room(f"Host{i}")).room_code)
        await asyncio.sleep(0.003)  # creation times are milliseconds: keep them distinct
    return codes


async def test_list_pages_newest_first(roomctl: Roomctl, store: RoomStore) -> None:
    codes = await create_rooms(store, 5)
    first = as_json(await roomctl("rooms", "list", "--limit", "3", "--json"))
    assert [r["code"] for r in first["rooms"]] == codes[::-1][:3]
    assert first["rooms"][0]["hostName"] == "Host4" and first["rooms"][0]["memberCount"] == 1
    assert set(first["rooms"][0]) == {"code", "hostId", "hostName", "isLocked", "maxUsers", "state", "memberCount",
                                      "connectedCount", "createdAt", "updatedAt", "expiresAt", "playerMessages",
                                      "hostMigration", "audience", "audienceLocked", "audienceCount",
                                      "audienceConnected", "audienceAdmitted"}  # fmt: skip
    second = as_json(await roomctl("--json", "rooms", "list", "--limit", "3", "--cursor", first["nextCursor"]))
    assert [r["code"] for r in second["rooms"]] == codes[::-1][3:]
    assert second["nextCursor"] is None


async def test_list_plain_output(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana\tTab")
    player = await store.join_room(host.room_code, "Bob")
    await store.connect(host.room_code, player.user_id, "s1")
    plain = await roomctl("rooms", "list")
    assert plain.exit_code == 0 and "\x1b[" not in plain.output  # piped: plain text, no colours
    header, row = plain.stdout.splitlines()
    assert header.split("\t") == ["CODE", "HOST", "MEMBERS c/t/max", "LOCKED", "STATE", "AGE", "EXPIRES IN", "IDLE",
                                  "AUDIENCE c/a"]  # fmt: skip
    cells = row.split("\t")
    assert cells[:5] == [host.room_code, "Ana Tab", "1/2/10", "no", "open"]  # a tab in a name cannot shift columns
    assert cells[6] in ("9m", "10m")  # the store fixture's TTL is 600 s
    assert cells[7] in ("0s", "1s")  # the last change: Bob connecting
    assert cells[8] == "-"  # created without an audience


async def test_list_more_pages_hint_on_stderr(roomctl: Roomctl, store: RoomStore) -> None:
    await create_rooms(store, 2)
    result = await roomctl("rooms", "list", "--limit", "1")
    assert len(result.stdout.splitlines()) == 2  # header + one room: the hint is not data
    assert result.stderr.startswith("more: roomctl rooms list --limit 1 --cursor ")


async def test_list_skips_expired_entries(roomctl: Roomctl, store: RoomStore, redis_client) -> None:
    alive = await store.create_room("Alive")
    gone = await store.create_room("Gone")
    await redis_client.delete(room_key(gone.room_code))  # as if it expired
    listed = as_json(await roomctl("--json", "rooms", "list"))
    assert [r["code"] for r in listed["rooms"]] == [alive.room_code]
    assert await redis_client.zscore(index_key(), gone.room_code) is not None  # read-only: the sweep removes it


async def test_list_rejects_a_bad_cursor(roomctl: Roomctl) -> None:
    result = await roomctl("rooms", "list", "--cursor", "12")
    assert result.exit_code == 2 and "not a rooms cursor" in result.stderr


async def test_show(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "[red]Bob")
    await store.connect(host.room_code, player.user_id, "s1")
    shown = as_json(await roomctl("rooms", "show", host.room_code.lower(), "--json"))
    assert shown["room"]["code"] == host.room_code and shown["room"]["connectedCount"] == 1
    assert shown["room"]["hostName"] == "Ana" and shown["room"]["memberCount"] == 2
    assert [(m["id"], m["displayName"], m["isHost"], m["isConnected"]) for m in shown["members"]] == [
        (host.user_id, "Ana", True, False),
        (player.user_id, "[red]Bob", False, True),
    ]
    assert shown["members"][0]["joinedAt"].endswith("Z")
    plain = await roomctl("rooms", "show", host.room_code)
    lines = plain.stdout.splitlines()
    assert lines[0] == f"code\t{host.room_code}" and f"host\tAna ({host.user_id})" in lines
    assert f"{player.user_id}\t[red]Bob\tyes\t" in lines  # names are printed as text, never as markup


@pytest.mark.parametrize("args", [["rooms", "show", "ZZZZ"], ["rooms", "lock", "zzzz"], ["rooms", "unlock", "ZZZZ"],
                                  ["rooms", "close", "ZZZZ", "--yes"]])  # fmt: skip
async def test_unknown_room_is_exit_1(roomctl: Roomctl, args: list[str]) -> None:
    result = await roomctl(*args)
    assert result.exit_code == 1
    assert result.stderr == "error: room ZZZZ not found\n" and result.stdout == ""


async def test_a_code_that_names_another_key_is_a_usage_error(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    result = await roomctl("rooms", "show", f"{host.room_code}:users")  # room:CODE:users is a SET
    assert result.exit_code == 2 and "is not a room code" in result.stderr


async def test_close_asks_first(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    refused = await roomctl("rooms", "close", host.room_code, input="n\n")
    assert refused.exit_code == 1 and "cancelled, nothing changed" in refused.stderr
    no_answer = await roomctl("rooms", "close", host.room_code, input="")  # stdin closed: no terminal to ask on
    assert no_answer.exit_code == 1 and "cancelled" in no_answer.stderr
    await store.check_member(host.room_code, host.user_id)  # still there
    done = await roomctl("rooms", "close", host.room_code.lower(), input="y\n")
    assert done.exit_code == 0 and f"room {host.room_code} closed" in done.stdout
    assert await store.get_members(host.room_code) == []
    assert await store.client.zscore(index_key(), host.room_code) is None


async def test_close_json_deletes_every_key(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    assert as_json(await roomctl("rooms", "close", host.room_code, "--yes", "--json")) == {"closed": host.room_code}
    assert await room_data_keys(store) == []  # room, members, users, index and expiry entries
    assert await store.get_user(host.room_code, player.user_id) is None


async def test_lock_unlock(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    assert as_json(await roomctl("--json", "rooms", "lock", host.room_code)) == {"code": host.room_code,
                                                                                  "isLocked": True}  # fmt: skip
    assert (await store.get_room(host.room_code))["isLocked"] is True
    again = await roomctl("rooms", "lock", host.room_code)
    assert again.exit_code == 0 and again.stdout == f"room {host.room_code} is locked\n"
    assert as_json(await roomctl("rooms", "unlock", host.room_code.lower(), "--json"))["isLocked"] is False
    assert (await store.get_room(host.room_code))["isLocked"] is False
