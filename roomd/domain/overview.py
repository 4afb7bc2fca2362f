"""Read-only views of the store for operators (roomctl): listing, details, statistics.

Listing walks the ``rooms:index`` sorted set newest first, a page at a time,
so it stays fast with 100,000 rooms; entries whose room has expired are
pruned as they are met. Pages continue after a *position* (creation time and
code), not an offset, so rooms created or closed between two pages neither
repeat nor vanish from the walk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from roomd.domain.store import INDEX_KEY, INSTANCES_KEY, guard, now_ms, public_room, room_key, user_key, users_key

STATS_CHUNK = 500
INSTANCE_STALE_MS = 15_000  # roomd heartbeats every second and drops entries older than this
MAX_ROUNDS = 20  # index reads per page when expired entries have to be pruned on the way

Position = tuple[int, str]  # (createdAt ms, code): where a page ends in the newest-first order


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
    next_cursor: str | None  # pass to the next list_rooms call; None on the last page


@dataclass(frozen=True)
class Stats:
    rooms: int
    members: int
    connected: int
    instances: list[tuple[str, int]]  # (host:pid:port, last heartbeat ms), by id


def encode_cursor(position: Position) -> str:
    score, code = position
    return f"{score}.{code}"


def parse_cursor(raw: str) -> Position:
    """The position a cursor names; ValueError if it is not one ``encode_cursor`` made."""
    score, dot, code = raw.strip().partition(".")
    if not dot or not score.isdigit() or not code or not code.isascii() or not code.isalnum():
        raise ValueError(f"not a rooms cursor: {raw!r}")
    return int(score), code


class Overview:
    def __init__(self, client: aioredis.Redis, command_timeout: float | None = None) -> None:
        self.client = client
        self.timeout = command_timeout

    async def _summaries(self, codes: list[str]) -> list[RoomSummary | None]:
        if not codes:
            return []
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

    async def _index_after(self, position: Position | None, count: int) -> tuple[list[Position], bool]:
        """Up to ``count`` index entries after ``position`` (newest first), and whether more follow."""
        if position is None:
            raw = await guard(self.client.zrevrange(INDEX_KEY, 0, count, withscores=True), self.timeout)
            entries = [(int(score), _text(code)) for code, score in raw]
        else:
            score, code = position
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.zrevrangebyscore(INDEX_KEY, score, score, withscores=True)  # same millisecond: by code
                pipe.zrevrangebyscore(INDEX_KEY, f"({score}", "-inf", start=0, num=count + 1, withscores=True)
                ties, older = await guard(pipe.execute(), self.timeout)
            entries = [(score, c) for c in (_text(m) for m, _ in ties) if c < code]
            entries += [(int(s), _text(m)) for m, s in older]
        return entries[:count], len(entries) > count

    async def list_rooms(self, limit: int = 50, cursor: str | None = None) -> Page:
        """Live rooms newest first, after ``cursor`` (a previous page's ``next_cursor``).

        Raises ValueError for a malformed cursor.
        """
        position = parse_cursor(cursor) if cursor else None
        rooms: list[RoomSummary] = []
        more = True
        for _ in range(MAX_ROUNDS):
            entries, more = await self._index_after(position, limit - len(rooms))
            summaries = await self._summaries([code for _, code in entries])
            gone = [code for (_, code), summary in zip(entries, summaries, strict=True) if summary is None]
            if gone:
                await guard(self.client.zrem(INDEX_KEY, *gone), self.timeout)
            rooms += [s for s in summaries if s is not None]
            if entries:
                position = entries[-1]
            if not more or len(rooms) >= limit:
                break
        return Page(rooms, encode_cursor(position) if more and position else None)

    async def stats(self) -> Stats:
        rooms = members = connected = 0
        cursor = None
        while True:
            page = await self.list_rooms(STATS_CHUNK, cursor)
            rooms += len(page.rooms)
            members += sum(len(r.members) for r in page.rooms)
            connected += sum(r.connected for r in page.rooms)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        instances = await guard(
            self.client.zrangebyscore(INSTANCES_KEY, now_ms() - INSTANCE_STALE_MS, "+inf", withscores=True),
            self.timeout,
        )
        return Stats(rooms, members, connected, sorted((_text(i), int(score)) for i, score in instances))


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
