"""The previous key layout: detected at roomd's start, converted by ``roomctl migrate``.

Before the per-room layout (:mod:`roomd.domain.keys`) a room was ``room:KXQD`` (no hash tag),
its members ``user:<id>`` strings not tied to the room, and ``rooms:incarnations`` a hash the
room scripts wrote. A roomd of this version would not see those rooms, and its expiry sweep
would drop their index entries; so roomd refuses to start on such a Redis (exit 2, one line
naming ``roomctl migrate``), and ``roomctl migrate`` converts it with every roomd stopped.

Migration, room by room, each in one MULTI/EXEC transaction (one Redis or a Sentinel master:
the previous layout never ran on a Cluster): the new keys are written with the room's
remaining TTL, the old ones deleted. Nobody is connected while every roomd is stopped, so
members are recorded disconnected (a ``hostMigration: "disconnect"`` room's host grace starts
then). Leftovers of rooms that expired or closed are deleted. Safe to run again: a room
already migrated has no old keys left. Old rate-limit counters are left to expire (two
windows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from roomd.domain.keys import Layout, Legacy, scheduled
from roomd.domain.store import CLAIM_GRACE_MS, guard, now_ms

SAMPLE = 20  # index entries looked at when detecting the previous layout


class OldLayoutError(Exception):
    """Redis holds rooms in the previous key layout (the message is one line for the operator)."""


@dataclass
class MigrationReport:
    migrated: list[str] = field(default_factory=list)  # rooms converted
    dropped: list[str] = field(default_factory=list)  # leftovers of rooms already gone
    conflicts: list[str] = field(default_factory=list)  # codes a new-layout room holds already (old copy dropped)
    members: int = 0


async def old_layout_rooms(client: aioredis.Redis, timeout: float | None = None) -> list[str]:
    """Some codes of rooms still in the previous layout ([] if there are none).

    Cheap enough for every start: ``rooms:incarnations`` (only the previous layout wrote it) and
    the previous record of the first :data:`SAMPLE` codes of ``rooms:index`` and ``rooms:expiry``.
    """
    async with client.pipeline(transaction=False) as pipe:
        pipe.hkeys(Legacy.INCARNATIONS)
        pipe.zrange(Legacy.INDEX, 0, SAMPLE - 1)
        pipe.zrange(Legacy.EXPIRY, 0, SAMPLE - 1)
        incarnations, indexed, expiring = await guard(pipe.execute(), timeout)
    found = sorted({_text(c) for c in incarnations})[:SAMPLE]
    candidates = sorted({_text(c) for c in (*indexed, *expiring)} - set(found))
    if candidates:
        async with client.pipeline(transaction=False) as pipe:
            for code in candidates:
                pipe.exists(Legacy.room(code))
            exists = await guard(pipe.execute(), timeout)
        found += [code for code, there in zip(candidates, exists, strict=True) if there]
    return found


async def refuse_old_layout(client: aioredis.Redis, timeout: float | None = None) -> None:
    """Raise :class:`OldLayoutError` if Redis holds rooms in the previous layout."""
    codes = await old_layout_rooms(client, timeout)
    if codes:
        shown = ", ".join(codes[:3]) + (", ..." if len(codes) > 3 else "")
        raise OldLayoutError(
            f"Redis holds rooms in roomd's previous key layout ({shown}): "
            "stop every roomd, run `roomctl migrate`, then start roomd again"
        )


async def live_old_instances(client: aioredis.Redis, timeout_ms: int) -> list[str]:
    """Instances in ``roomd:instances`` (unprefixed) that heartbeated within ``timeout_ms`` (Redis's clock)."""
    seconds, micros = await client.time()
    cutoff = int(seconds) * 1000 + int(micros) // 1000 - timeout_ms
    return [_text(i) for i in await client.zrangebyscore(Legacy.INSTANCES, cutoff, "+inf")]


async def codes_to_migrate(client: aioredis.Redis) -> list[str]:
    """Every code the previous layout's indexes name (without a prefix the current layout's sweeps
    share these sorted sets: their ``code|incarnation`` members are not the previous layout's)."""
    codes: set[str] = set()
    for key in (Legacy.INDEX, Legacy.EXPIRY, Legacy.HOSTLESS):
        async for member, _ in client.zscan_iter(key):
            codes.add(_text(member))
    codes.update(_text(code) for code in await client.hkeys(Legacy.INCARNATIONS))
    return sorted(code for code in codes if "|" not in code)


async def migrate(client: aioredis.Redis, layout: Layout, *, dry_run: bool = False) -> MigrationReport:
    """Convert every room of the previous layout to ``layout`` (see the module's docstring).

    The caller has checked that no roomd runs (:func:`live_old_instances`). With ``dry_run``
    nothing is written: the report says what would be done.
    """
    report = MigrationReport()
    for code in await codes_to_migrate(client):
        await _migrate_room(client, layout, code, report, dry_run)
    if not dry_run:
        await _retire_instances(client, layout)
        leftovers = [Legacy.INCARNATIONS]
        if layout.prefix:  # the previous indexes had no prefix: every entry is migrated now
            leftovers += [Legacy.INDEX, Legacy.EXPIRY, Legacy.HOSTLESS]
        await client.delete(*leftovers)
    return report


async def _migrate_room(client: aioredis.Redis, layout: Layout, code: str, report: MigrationReport, dry: bool) -> None:
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(Legacy.room(code))
        pipe.pttl(Legacy.room(code))
        pipe.smembers(Legacy.users(code))
        pipe.lrange(Legacy.history(code), 0, -1)
        pipe.hgetall(Legacy.state(code))
        pipe.hgetall(Legacy.values(code))
        pipe.hget(Legacy.INCARNATIONS, code)
        pipe.exists(layout.room(code), layout.claim(code))
        raw, pttl, ids, history, state, values, incarnation, taken = await pipe.execute()
    if raw is None and taken:
        return  # a room of the current layout (or its claim) and nothing of the previous one's record
    user_ids = sorted(_text(i) for i in ids)
    users = await client.mget([Legacy.user(i) for i in user_ids]) if user_ids else []
    old_keys = [
        Legacy.room(code),
        Legacy.users(code),
        Legacy.history(code),
        Legacy.state(code),
        Legacy.values(code),
        *(Legacy.user(i) for i in user_ids),
    ]
    alive = raw is not None and (int(pttl) > 0 or int(pttl) == -1)
    if alive and taken:
        report.conflicts.append(code)
    elif alive:
        report.migrated.append(code)
    else:
        report.dropped.append(code)
    if dry:
        if alive and not taken:
            report.members += sum(1 for u in users if u is not None)
        return
    now = now_ms()
    async with client.pipeline(transaction=True) as tx:
        if alive and not taken:
            room = json.loads(raw)
            ttl = int(pttl) if int(pttl) > 0 else int(room.get("ttlMs") or 0) or 7_200_000
            members: dict[Any, Any] = {}
            for user_id, user_raw in zip(user_ids, users, strict=True):
                if user_raw is None:
                    continue
                member = json.loads(user_raw)
                member.update(isConnected=False, socketId="", instance="")  # no roomd runs: nobody is connected
                members[user_id] = json.dumps(member)
            report.members += len(members)
            if room.get("hostMigration") == "disconnect":
                room["hostAwaySince"] = room.get("hostAwaySince") or now
            inc = _text(incarnation) if incarnation is not None else str(room.get("incarnation") or "")
            tx.set(layout.room(code), json.dumps(room), px=ttl)
            tx.set(layout.claim(code), json.dumps({"incarnation": inc, "createdAt": room["createdAt"]}),
                   px=ttl + CLAIM_GRACE_MS)  # fmt: skip
            if members:
                tx.hset(layout.users(code), mapping=members)
                tx.pexpire(layout.users(code), ttl)
            if history:
                tx.rpush(layout.history(code), *history)
                tx.pexpire(layout.history(code), ttl)
            for new, mapping in ((layout.state(code), state), (layout.values(code), values)):
                if mapping:
                    tx.hset(new, mapping=mapping)
                    tx.pexpire(new, ttl)
            # The sweeps' sets now name a room by code and incarnation; the listing keeps codes.
            tx.zrem(Legacy.EXPIRY, code)
            tx.zrem(Legacy.HOSTLESS, code)
            if layout.prefix:
                tx.zrem(Legacy.INDEX, code)
            tx.zadd(layout.index, {code: int(room["createdAt"])})
            tx.zadd(layout.expiry, {scheduled(code, inc): now + ttl})
            if room.get("hostAwaySince"):
                tx.zadd(layout.hostless, {scheduled(code, inc): int(room["hostAwaySince"])})
        else:
            tx.zrem(Legacy.EXPIRY, code)
            tx.zrem(Legacy.HOSTLESS, code)
            if layout.prefix or not taken:  # without a prefix, a new room's listing is this very entry
                tx.zrem(Legacy.INDEX, code)
        tx.delete(*old_keys)
        tx.hdel(Legacy.INCARNATIONS, code)
        await tx.execute()


async def _retire_instances(client: aioredis.Redis, layout: Layout) -> None:
    """The previous layout's instances are all stopped: their entries and socket indexes go."""
    instances = [_text(i) for i in await client.zrange(Legacy.INSTANCES, 0, -1)]
    if instances:
        await client.delete(*(Legacy.instance_sockets(i) for i in instances))
        await client.zrem(Legacy.INSTANCES, *instances)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
