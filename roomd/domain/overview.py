"""Read-only views of the store for operators (roomctl): listing, details, statistics, search.

Strictly read-only: it works under a Redis ACL that allows only read commands
(a monitoring user), and it never races roomd's scripts. Index entries whose
room has expired are skipped, not deleted: removing them is the expiry sweep's
job (each roomd instance, every second, after re-checking the room, and only if
the entry is still that room's), and a ZREM from here could remove the entry of
a new room that took the code meanwhile. A room's record and members share its
slot, so on a Cluster a page is one pipelined round trip per node.

Listing walks the ``rooms:index`` sorted set newest first, a page at a time,
so it stays fast with 100,000 rooms. Pages continue after a *position*
(creation time and code), not an offset, so rooms created or closed between
two pages neither repeat nor vanish from the walk. A filter is applied while
walking, and a page is filled from further entries up to a bounded number of
index reads.

**The audience** (issue 13: rooms created with ``audience: true``) is read the way
roomd counts it: the connected viewers are the sum of the ``audience:online`` fields
of *live* instances (a dead instance's field lingers until roomd's count script drops
it), the admitted viewers are the ``audience`` hash's length. A room's viewers (up to
``AUDIENCE_MAX``, 10,000) are read with HSCAN, a chunk at a time, never one HGETALL
that would hold Redis for the whole hash. (The poll is read by ``RoomStore.get_poll``,
the one reader of the poll keys.) Rooms without an audience cost nothing more.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from roomd.config import Settings
from roomd.domain import keys
from roomd.domain.store import guard, iso, now_ms, public_room

STATS_CHUNK = 500
FILTER_CHUNK = 500  # index entries read at a time when a filter may drop most of them
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")  # ids roomd issues
INSTANCE_STALE_MS = Settings.instance_timeout_ms  # a heartbeat older than this: a dead instance
MAX_ROUNDS = 20  # index reads per page (expired or filtered-out entries are skipped on the way)
COMPLETION_SCAN = 1_000  # ZSCAN COUNT hint when completing room codes
VIEWER_SCAN = 1_000  # HSCAN COUNT hint when reading a room's viewers

Position = tuple[int, str]  # (createdAt ms, code): where a page ends in the newest-first order
ViewerPosition = tuple[int, str]  # (joinedAt ms, audience id): where a page of viewers ends, oldest first


@dataclass(frozen=True)
class Audience:
    """A room's audience as an operator sees it (rooms created with ``audience: true``)."""

    locked: bool  # the host locked the audience: no more viewers admitted
    connected: int  # viewer sockets on live roomd instances, now
    admitted: int  # viewers holding a valid token (the audience hash), connected or not


@dataclass(frozen=True)
class RoomSummary:
    room: dict[str, Any]  # as stored (times in epoch ms)
    members: list[dict[str, Any]]  # as stored, oldest first
    audience: Audience | None = None  # None: the room was created without an audience

    @property
    def host(self) -> dict[str, Any] | None:
        return next((m for m in self.members if m["id"] == self.room["hostId"]), None)

    @property
    def connected(self) -> int:
        return sum(1 for m in self.members if m.get("isConnected"))

    @property
    def updated_at(self) -> int:
        """The last change of the room (join, leave, presence, lock, host): every script that
        changes a room rewrites ``updatedAt``."""
        return int(self.room.get("updatedAt", self.room["createdAt"]))


RoomFilter = Callable[[RoomSummary], bool]


@dataclass(frozen=True)
class Page:
    rooms: list[RoomSummary]
    next_cursor: str | None  # pass to the next list_rooms call; None on the last page


@dataclass(frozen=True)
class ViewerPage:
    viewers: list[dict[str, Any]]  # as stored ({id, displayName, joinedAt}), oldest first
    next_cursor: str | None  # pass to the next viewers call; None on the last page


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


def encode_viewer_cursor(position: ViewerPosition) -> str:
    joined, audience_id = position
    return f"{joined}.{audience_id}"


def parse_viewer_cursor(raw: str) -> ViewerPosition:
    """The position a viewers cursor names; ValueError if it is not one ``encode_viewer_cursor`` made."""
    joined, dot, audience_id = raw.strip().partition(".")
    if not dot or not joined.isdigit() or not audience_id or not _ID_CHARS.issuperset(audience_id):
        raise ValueError(f"not an audience cursor: {raw!r}")
    return int(joined), audience_id


def name_key(name: str) -> str:
    """A display name as searches compare it: NFKC-normalised and case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


def name_matches(needle: str) -> Callable[[str], bool]:
    """Case-insensitive "contains": ``ana`` finds Ana, Anaïs and Joana."""
    wanted = name_key(needle)
    return lambda name: wanted in name_key(name)


class Overview:
    def __init__(
        self,
        client: aioredis.Redis,
        command_timeout: float | None = None,
        layout: keys.Layout | None = None,
        instance_timeout_ms: int = INSTANCE_STALE_MS,
    ) -> None:
        self.client = client
        self.timeout = command_timeout
        self.keys = layout or keys.layout()
        # roomd's INSTANCE_TIMEOUT_MS: an instance whose heartbeat is older is dead (its viewers
        # are not counted, it is not listed), as roomd's own scripts judge it
        self.instance_timeout_ms = instance_timeout_ms

    async def summaries(self, codes: list[str]) -> list[RoomSummary | None]:
        """Each room with its members (None where the room is gone), in one pipelined round trip
        (on a Cluster, one per node: each room's record and members share its slot)."""
        if not codes:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.get(self.keys.room(code))
                pipe.hgetall(self.keys.users(code))
            raw = await guard(pipe.execute(), self.timeout)
        found: list[RoomSummary | None] = []
        for n in range(len(codes)):
            room = raw[2 * n]
            if room is None:
                found.append(None)
                continue
            members = sorted((json.loads(u) for u in raw[2 * n + 1].values()), key=lambda u: u.get("joinSeq", 0))
            found.append(RoomSummary(json.loads(room), members))
        return await self._with_audience(found)

    async def _with_audience(self, found: list[RoomSummary | None]) -> list[RoomSummary | None]:
        """The summaries, those of rooms with an audience completed with it: one more round trip,
        only when the page has such rooms (the live instances, each room's online and admitted)."""
        watched = [(n, s) for n, s in enumerate(found) if s is not None and s.room.get("audience")]
        if not watched:
            return found
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self.keys.instances, now_ms() - self.instance_timeout_ms, "+inf")
            for _, summary in watched:
                pipe.hgetall(self.keys.audience_online(summary.room["code"]))
                pipe.hlen(self.keys.audience(summary.room["code"]))
            raw = await guard(pipe.execute(), self.timeout)
        live = {_text(i) for i in raw[0]}
        done = list(found)
        for k, (n, summary) in enumerate(watched):
            online, admitted = raw[1 + 2 * k], raw[2 + 2 * k]
            audience = Audience(bool(summary.room.get("audienceLocked")), online_size(online, live), int(admitted))
            done[n] = RoomSummary(summary.room, summary.members, audience)
        return done

    async def room(self, code: str) -> RoomSummary | None:
        return (await self.summaries([code]))[0]

    async def _index_after(self, position: Position | None, count: int) -> tuple[list[Position], bool]:
        """Up to ``count`` index entries after ``position`` (newest first), and whether more follow."""
        if position is None:
            raw: Any = await guard(self.client.zrevrange(self.keys.index, 0, count, withscores=True), self.timeout)
            entries = [(int(score), _text(code)) for code, score in raw]
        else:
            score, code = position
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.zrevrangebyscore(self.keys.index, score, score, withscores=True)  # same millisecond: by code
                pipe.zrevrangebyscore(self.keys.index, f"({score}", "-inf", start=0, num=count + 1, withscores=True)
                ties, older = await guard(pipe.execute(), self.timeout)
            entries = [(score, c) for c in (_text(m) for m, _ in ties) if c < code]
            entries += [(int(s), _text(m)) for m, s in older]
        return entries[:count], len(entries) > count

    async def list_rooms(self, limit: int = 50, cursor: str | None = None, where: RoomFilter | None = None) -> Page:
        """Live rooms newest first, after ``cursor`` (a previous page's ``next_cursor``).

        ``where`` keeps only the rooms it accepts. A page holds up to ``limit`` rooms; it
        may hold fewer and still have a ``next_cursor`` when expired or filtered-out
        entries used up its index reads (MAX_ROUNDS). Raises ValueError for a malformed
        cursor.
        """
        position = parse_cursor(cursor) if cursor else None
        rooms: list[RoomSummary] = []
        more = True
        for _ in range(MAX_ROUNDS):
            wanted = limit - len(rooms)
            entries, more_after = await self._index_after(position, wanted if where is None else FILTER_CHUNK)
            summaries = await self.summaries([code for _, code in entries])
            more = more_after
            for n, (entry, summary) in enumerate(zip(entries, summaries, strict=True)):
                position = entry  # expired (None) or filtered out: skipped, never deleted
                if summary is not None and (where is None or where(summary)):
                    rooms.append(summary)
                    if len(rooms) >= limit:
                        more = more_after or n < len(entries) - 1
                        break
            if not more or len(rooms) >= limit:
                break
        return Page(rooms, encode_cursor(position) if more and position else None)

    async def all_rooms(self, where: RoomFilter | None = None) -> list[RoomSummary]:
        """Every live room (accepted by ``where``), newest first: a paged walk that never blocks Redis."""
        found: list[RoomSummary] = []
        cursor = None
        while True:
            page = await self.list_rooms(STATS_CHUNK, cursor, where)
            found += page.rooms
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

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
        instances: Any = await guard(
            self.client.zrangebyscore(
                self.keys.instances, now_ms() - self.instance_timeout_ms, "+inf", withscores=True
            ),
            self.timeout,
        )
        return Stats(rooms, members, connected, sorted((_text(i), int(score)) for i, score in instances))

    async def find_users(self, name: str, limit: int) -> tuple[list[tuple[dict[str, Any], RoomSummary]], bool]:
        """Members whose display name contains ``name`` (case-insensitive), newest rooms first.

        Returns up to ``limit`` (member, room) pairs and whether more matched. Walks the
        whole index like ``stats``.
        """
        matches = name_matches(name)
        found: list[tuple[dict[str, Any], RoomSummary]] = []
        cursor = None
        while True:
            page = await self.list_rooms(STATS_CHUNK, cursor)
            for summary in page.rooms:
                for member in summary.members:
                    if matches(str(member.get("displayName", ""))):
                        if len(found) >= limit:
                            return found, True
                        found.append((member, summary))
            if page.next_cursor is None:
                return found, False
            cursor = page.next_cursor

    async def codes_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Room codes in the index that start with ``prefix`` (letters and digits), newest first.

        For shell completion: ZSCAN with a MATCH pattern, stopping at ``limit`` matches.
        """
        if not prefix:
            newest: Any = await guard(self.client.zrevrange(self.keys.index, 0, limit - 1), self.timeout)
            return [_text(code) for code in newest]
        if not (prefix.isascii() and prefix.isalnum()):
            return []
        scored: list[tuple[float, str]] = []
        cursor: int = 0
        batch: Any
        while True:
            cursor, batch = await guard(
                self.client.zscan(self.keys.index, cursor, match=f"{prefix}*", count=COMPLETION_SCAN), self.timeout
            )
            scored += [(float(score), _text(code)) for code, score in batch]
            if cursor == 0 or len(scored) >= limit:
                break
        return [code for _, code in sorted(scored, reverse=True)[:limit]]

    # -- the audience and its polls ---------------------------------------------------------

    async def viewers(
        self, code: str, limit: int = 100, cursor: str | None = None, name: str | None = None
    ) -> ViewerPage:
        """Admitted viewers of room ``code``, oldest first, ``limit`` after ``cursor`` (a previous
        page's ``next_cursor``), those whose name contains ``name`` only if given.

        The whole audience hash is read with HSCAN (chunks of VIEWER_SCAN: Redis is never held
        for 10,000 entries at once) and sorted by (joinedAt, id): the order HSCAN returns is the
        hash's, not the joining one. Pages continue after a position, so viewers admitted or
        kicked between two pages neither repeat nor hide others. Raises ValueError for a
        malformed cursor.
        """
        after = parse_viewer_cursor(cursor) if cursor else None
        matches = name_matches(name) if name is not None else None
        everyone = [
            v for v in await self._scan_viewers(code) if matches is None or matches(str(v.get("displayName", "")))
        ]
        everyone.sort(key=_viewer_position)
        rest = everyone if after is None else [v for v in everyone if _viewer_position(v) > after]
        page = rest[:limit]
        more = len(rest) > limit
        return ViewerPage(page, encode_viewer_cursor(_viewer_position(page[-1])) if more else None)

    async def _scan_viewers(self, code: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: int = 0
        batch: Any
        while True:
            cursor, batch = await guard(
                self.client.hscan(self.keys.audience(code), cursor, count=VIEWER_SCAN), self.timeout
            )
            for audience_id, raw in batch.items():
                found.append(_viewer(_text(audience_id), raw))
            if cursor == 0:
                return found

    async def viewer_ids_starting_with(self, code: str, prefix: str, limit: int) -> list[tuple[str, str]]:
        """(audience id, display name) of up to ``limit`` viewers of ``code`` whose id starts with
        ``prefix`` (for completing ``rooms kick CODE <TAB>``): HSCAN with a MATCH pattern."""
        if not _ID_CHARS.issuperset(prefix):
            return []
        found: list[tuple[str, str]] = []
        cursor: int = 0
        batch: Any
        while True:
            cursor, batch = await guard(
                self.client.hscan(self.keys.audience(code), cursor, match=f"{prefix}*", count=VIEWER_SCAN),
                self.timeout,
            )
            for audience_id, raw in batch.items():
                viewer = _viewer(_text(audience_id), raw)
                found.append((viewer["id"], str(viewer.get("displayName", ""))))
            if cursor == 0 or len(found) >= limit:
                return sorted(found)[:limit]

    async def viewer(self, code: str, audience_id: str) -> dict[str, Any] | None:
        """One admitted viewer of room ``code`` as stored, None if not admitted (or no room)."""
        raw = await guard(self.client.hget(self.keys.audience(code), audience_id), self.timeout)
        return None if raw is None else _viewer(audience_id, raw)

    async def member_ids(self, code: str) -> list[str]:
        """The member ids of a room (for completing ``users kick CODE <TAB>``)."""
        return sorted(_text(i) for i in await guard(self.client.hkeys(self.keys.users(code)), self.timeout))


def public_member(member: dict[str, Any], host_id: str) -> dict[str, Any]:
    return {
        "id": member["id"],
        "displayName": member["displayName"],
        "isConnected": bool(member.get("isConnected")),
        "isHost": member["id"] == host_id,
        "joinedAt": member.get("joinedAt"),
    }


def describe(summary: RoomSummary) -> dict[str, Any]:
    """A room as operators see it: the client view plus host name and presence counts.

    The audience: ``audience`` / ``audienceLocked`` / ``audienceCount`` as clients see them
    (the count as last published to the host, at most a second old), and the operator's
    ``audienceConnected`` (viewer sockets on live instances, read now) and ``audienceAdmitted``
    (viewers holding a valid token); both 0 for a room without an audience.
    """
    view = public_room(summary.room, len(summary.members))
    host = summary.host
    view["hostName"] = host["displayName"] if host else None
    view["connectedCount"] = summary.connected
    audience = summary.audience
    view["audienceConnected"] = audience.connected if audience else 0
    view["audienceAdmitted"] = audience.admitted if audience else 0
    return view


def online_size(online: dict[Any, Any], live: set[str]) -> int:
    """The connected viewers: the ``audience:online`` fields of live instances, summed (a field
    below 0 counts 0; a dead instance's field is left for roomd's count script to drop)."""
    return sum(max(0, int(count)) for instance, count in online.items() if _text(instance) in live)


def public_viewer(viewer: dict[str, Any]) -> dict[str, Any]:
    """A viewer as roomctl shows it: id, display name, when admitted (ISO-8601)."""
    return {"id": viewer["id"], "displayName": viewer.get("displayName", ""), "joinedAt": iso(viewer.get("joinedAt"))}


def _viewer(audience_id: str, raw: bytes | str) -> dict[str, Any]:
    """A stored viewer record; a record that cannot be read still shows its id."""
    try:
        viewer = json.loads(raw)
    except ValueError:
        viewer = None
    if not isinstance(viewer, dict):
        viewer = {}
    return {**viewer, "id": audience_id}


def _viewer_position(viewer: dict[str, Any]) -> ViewerPosition:
    joined = viewer.get("joinedAt")
    return (int(joined) if isinstance(joined, int | float) else 0), str(viewer["id"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
