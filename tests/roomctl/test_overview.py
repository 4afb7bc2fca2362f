"""Overview paging (roomd.domain.overview): newest first, by position, so pages neither repeat nor skip."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from roomd.domain.keys import index_key, room_key
from roomd.domain.overview import Overview, encode_cursor, parse_cursor


async def put_rooms(client: aioredis.Redis, rooms: dict[str, int]) -> None:
    """Minimal stored rooms with chosen index scores (creation times)."""
    async with client.pipeline(transaction=False) as pipe:
        for code, created in rooms.items():
            pipe.set(room_key(code), json.dumps({"code": code, "hostId": "h", "createdAt": created}))
            pipe.zadd(index_key(), {code: created})
        await pipe.execute()


async def walk(overview: Overview, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await overview.list_rooms(limit, cursor)
        pages.append([r.room["code"] for r in page.rooms])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_equal_creation_times_page_by_code(redis_client: aioredis.Redis) -> None:
    await put_rooms(redis_client, {"A": 5, "B": 5, "C": 5, "D": 5, "E": 9, "F": 1})
    assert await walk(Overview(redis_client), 2) == [["E", "D"], ["C", "B"], ["A", "F"]]
    assert await walk(Overview(redis_client), 6) == [["E", "D", "C", "B", "A", "F"]]  # a full last page: no extra


async def test_rooms_created_between_pages_do_not_repeat(redis_client: aioredis.Redis) -> None:
    await put_rooms(redis_client, {"A": 1, "B": 2, "C": 3, "D": 4})
    overview = Overview(redis_client)
    first = await overview.list_rooms(2)
    await put_rooms(redis_client, {"N": 10})  # newer: belongs before page one
    second = await overview.list_rooms(2, first.next_cursor)
    assert [r.room["code"] for r in second.rooms] == ["B", "A"] and second.next_cursor is None


async def test_rooms_closed_between_pages_do_not_hide_others(redis_client: aioredis.Redis) -> None:
    await put_rooms(redis_client, {"A": 1, "B": 2, "C": 3, "D": 4})
    overview = Overview(redis_client)
    first = await overview.list_rooms(2)
    await redis_client.zrem(index_key(), "D")  # closed meanwhile
    assert [r.room["code"] for r in (await overview.list_rooms(2, first.next_cursor)).rooms] == ["B", "A"]


async def test_expired_entries_are_skipped_not_deleted_and_the_page_filled(redis_client: aioredis.Redis) -> None:
    await put_rooms(redis_client, {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5})
    await redis_client.delete(room_key("E"), room_key("C"))  # expired; their index entries linger until roomd's sweep
    page = await Overview(redis_client).list_rooms(2)
    assert [r.room["code"] for r in page.rooms] == ["D", "B"] and page.next_cursor == encode_cursor((2, "B"))
    assert await redis_client.zrevrange(index_key(), 0, -1) == [b"E", b"D", b"C", b"B", b"A"]  # read-only


async def test_filtered_pages_continue_after_the_last_room_examined(redis_client: aioredis.Redis) -> None:
    await put_rooms(redis_client, {f"R{n}": n for n in range(10)})
    even = await walk_filtered(Overview(redis_client), 2, lambda s: int(s.room["code"][1:]) % 2 == 0)
    assert even == [["R8", "R6"], ["R4", "R2"], ["R0"]]


async def walk_filtered(overview: Overview, limit: int, where) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await overview.list_rooms(limit, cursor, where)
        pages.append([r.room["code"] for r in page.rooms])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_codes_for_completion(redis_client: aioredis.Redis) -> None:
    await put_rooms(redis_client, {"KXQD": 1, "KXAB": 3, "ZZZZ": 2})
    overview = Overview(redis_client)
    assert await overview.codes_starting_with("KX", 10) == ["KXAB", "KXQD"]  # newest first
    assert await overview.codes_starting_with("", 2) == ["KXAB", "ZZZZ"]
    assert await overview.codes_starting_with("K*", 10) == []  # never a pattern


def test_cursor_round_trip_and_rejects() -> None:
    assert parse_cursor(encode_cursor((1795563549123, "KXQD"))) == (1795563549123, "KXQD")
    for bad in ("", "12", "x.KXQD", "12.", "12.K:users"):
        with pytest.raises(ValueError):
            parse_cursor(bad)


async def test_overview_works_under_a_read_only_acl(private_redis, tmp_path) -> None:
    """A monitoring user limited to read commands can list, show, find and count, with expired entries around."""
    from roomd.domain.store import RoomStore, make_redis_client
    from tests.roomctl.conftest import as_json, invoke

    server = private_redis()
    admin = make_redis_client(server.url, command_timeout=5)
    try:
        await admin.execute_command("ACL", "SETUSER", "monitor", "on", ">pw", "~*", "&*", "+@read", "+@connection",
                                    "+@pubsub", "-@write", "-@admin", "-@dangerous")  # fmt: skip
        store = RoomStore(admin, ttl_seconds=600)
        host = await store.create_room("Ana")
        player = await store.join_room(host.room_code, "Bob")
        gone = await store.create_room("Gone")
        await admin.delete(room_key(gone.room_code))  # expired, not yet swept: its index entry lingers
        url = server.url.replace("redis://", "redis://monitor:pw@")

        async def ctl(*args: str):
            return await asyncio.to_thread(invoke, "--redis-url", url, *args)

        listed = as_json(await ctl("rooms", "list", "--json"))
        assert [r["code"] for r in listed["rooms"]] == [host.room_code]
        assert as_json(await ctl("rooms", "list", "--json", "--empty"))["rooms"][0]["code"] == host.room_code
        assert as_json(await ctl("stats", "--json"))["members"] == 2
        assert as_json(await ctl("rooms", "show", host.room_code, "--json"))["room"]["memberCount"] == 2
        shown = as_json(await ctl("users", "show", host.room_code, player.user_id, "--json"))
        assert shown["user"]["displayName"] == "Bob"
        assert as_json(await ctl("users", "find", "bo", "--json"))["users"][0]["id"] == player.user_id
        assert await admin.zscore(index_key(), gone.room_code) is not None  # skipped, not deleted
        refused = await ctl("rooms", "lock", host.room_code)  # the ACL is real: writes are refused
        assert refused.exit_code == 3 and "no permissions" in refused.stderr
    finally:
        await admin.aclose()
