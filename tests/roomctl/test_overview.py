"""Overview paging (roomd.domain.overview): newest first, by position, so pages neither repeat nor skip."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from roomd.domain.overview import Overview, encode_cursor, parse_cursor
from roomd.domain.store import INDEX_KEY


async def put_rooms(client: aioredis.Redis, rooms: dict[str, int]) -> None:
    """Minimal stored rooms with chosen index scores (creation times)."""
    async with client.pipeline(transaction=False) as pipe:
        for code, created in rooms.items():
            pipe.set(f"room:{code}", json.dumps({"code": code, "hostId": "h", "createdAt": created}))
            pipe.zadd(INDEX_KEY, {code: created})
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
    await redis_client.zrem(INDEX_KEY, "D")  # closed meanwhile
    assert [r.room["code"] for r in (await overview.list_rooms(2, first.next_cursor)).rooms] == ["B", "A"]


async def test_expired_entries_are_pruned_and_the_page_filled(redis_client: aioredis.Redis) -> None:
    await put_rooms(redis_client, {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5})
    await redis_client.delete("room:E", "room:C")  # expired; their index entries linger
    page = await Overview(redis_client).list_rooms(2)
    assert [r.room["code"] for r in page.rooms] == ["D", "B"] and page.next_cursor == encode_cursor((2, "B"))
    assert await redis_client.zrevrange(INDEX_KEY, 0, -1) == [b"D", b"B", b"A"]


def test_cursor_round_trip_and_rejects() -> None:
    assert parse_cursor(encode_cursor((1795563549123, "KXQD"))) == (1795563549123, "KXQD")
    for bad in ("", "12", "x.KXQD", "12.", "12.K:users"):
        with pytest.raises(ValueError):
            parse_cursor(bad)
