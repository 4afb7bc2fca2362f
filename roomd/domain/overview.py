"""Read-only views of the store for operators (roomctl): listing, details, statistics.

Listing walks the ``rooms:index`` sorted set newest first, a page at a time,
so it stays fast with 100,000 rooms; entries whose room has expired are
pruned as they are met.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from roomd.domain.store import INDEX_KEY, INSTANCES_KEY, guard, now_ms, public_room, room_key, user_key, users_key

STATS_CHUNK = 500


@dataclass(frozen=True)
class RoomSummary:
    room: dict[str, Any]  # as stored (times in epoch ms)
    members: list[dict[str, Any]]  # as stored, oldest first

    @property
    def host(self) -> dict[str, Any] | None:
        return next((m for m in self.members if m["id"] == self.room["hostId"]), None)

    @property
    def connected(self) -> int:
        return sum(1 for m in self.members if m.get("isConnected"))


@dataclass(frozen=True)
class Page:
    rooms: list[RoomSummary]
    next_cursor: int | None


@dataclass(frozen=True)
class Stats:
    rooms: int
    members: int
    connected: int
    instances: list[tuple[str, int]]  # (host:pid:port, last heartbeat ms)


class Overview:
    def __init__(self, client: aioredis.Redis, command_timeout: float | None = None) -> None:
        self.client = client
        self.timeout = command_timeout

    async def _summaries(self, codes: list[str]) -> list[RoomSummary | None]:
        async with self.client.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.get(room_key(code))
                pipe.smembers(users_key(code))
            raw = await guard(pipe.execute(), self.timeout)
        ids = [sorted(_text(i) for i in raw[2 * n + 1]) for n in range(len(codes))]
        flat = [i for group in ids for i in group]
        users = await guard(self.client.mget([user_key(i) for i in flat]), self.timeout) if flat else []
        by_id = {i: json.loads(u) for i, u in zip(flat, users, strict=True) if u is not None}
        found: list[RoomSummary | None] = []
        for n in range(len(codes)):
            room = raw[2 * n]
            if room is None:
                found.append(None)
                continue
            members = sorted((by_id[i] for i in ids[n] if i in by_id), key=lambda u: u.get("joinSeq", 0))
            found.append(RoomSummary(json.loads(room), members))
        return found

    async def room(self, code: str) -> RoomSummary | None:
        return (await self._summaries([code]))[0]

    async def list_rooms(self, limit: int = 50, cursor: int = 0) -> Page:
        """Rooms newest first; ``cursor`` is the offset returned by the previous page."""
        codes = [
            _text(c) for c in await guard(self.client.zrevrange(INDEX_KEY, cursor, cursor + limit - 1), self.timeout)
        ]
        summaries = await self._summaries(codes)
        gone = [code for code, summary in zip(codes, summaries, strict=True) if summary is None]
        if gone:
            await guard(self.client.zrem(INDEX_KEY, *gone), self.timeout)
        rooms = [s for s in summaries if s is not None]
        next_cursor = cursor + len(codes) - len(gone) if len(codes) == limit else None
        return Page(rooms, next_cursor)

    async def stats(self) -> Stats:
        rooms = members = connected = 0
        offset = 0
        while True:
            page = await self.list_rooms(STATS_CHUNK, offset)
            rooms += len(page.rooms)
            members += sum(len(r.members) for r in page.rooms)
            connected += sum(r.connected for r in page.rooms)
            if page.next_cursor is None:
                break
            offset = page.next_cursor
        instances = await guard(
            self.client.zrangebyscore(INSTANCES_KEY, now_ms() - 15_000, "+inf", withscores=True), self.timeout
        )
        return Stats(rooms, members, connected, [(_text(i), int(score)) for i, score in instances])


def public_member(member: dict[str, Any], host_id: str) -> dict[str, Any]:
    return {
        "id": member["id"],
        "displayName": member["displayName"],
        "isConnected": bool(member.get("isConnected")),
        "isHost": member["id"] == host_id,
        "joinedAt": member.get("joinedAt"),
    }


def describe(summary: RoomSummary) -> dict[str, Any]:
    """A room as operators see it: the client view plus host name and presence counts."""
    view = public_room(summary.room, len(summary.members))
    host = summary.host
    view["hostName"] = host["displayName"] if host else None
    view["connectedCount"] = summary.connected
    return view


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
