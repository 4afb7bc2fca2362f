"""A Redis in roomd's previous key layout, written as its scripts wrote it (before issue 12).

Rooms were ``room:KXQD`` (no hash tag), members ``user:<id>`` strings next to a SET of ids,
and the cross-room keys (``rooms:index``, ``rooms:expiry``, ``rooms:incarnations``,
``rooms:hostless``, ``roomd:instances`` and the socket indexes) were written by the room
scripts. Names come from :class:`roomd.domain.keys.Legacy`.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from roomd.domain.keys import Legacy


@dataclass
class OldRoom:
    code: str
    host: str
    members: list[str]
    incarnation: str
    created_at: int
    ttl_ms: int
    history: list[bytes] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


async def write_old_room(
    client: aioredis.Redis,
    code: str,
    names: list[str],
    *,
    ttl_ms: int = 600_000,
    connected: int = 0,
    instance: str = "old:1:1:zz",
    host_migration: str = "leave",
    with_state: bool = True,
) -> OldRoom:
    """A room of ``names`` (the first hosts); the first ``connected`` are connected through ``instance``."""
    now = int(time.time() * 1000)
    incarnation = secrets.token_hex(8)
    ids = [secrets.token_urlsafe(16).replace("-", "x") for _ in names]
    history = []
    seq = 0
    for user_id, name in zip(ids, names, strict=True):
        seq += 1
        meta = {"skip": user_id, "seq": seq, "inc": incarnation}
        frame = {"event": "user:joined", "data": {"user": {"id": user_id, "displayName": name}}, "seq": seq}
        history.append((json.dumps(meta) + "\n" + json.dumps(frame)).encode())
    room = {
        "code": code, "hostId": ids[0], "isLocked": False, "maxUsers": 10, "state": "open", "createdAt": now,
        "updatedAt": now, "expiresAt": now + ttl_ms, "seq": seq, "joinSeq": len(ids), "ttlMs": ttl_ms,
        "incarnation": incarnation, "playerMessages": "host", "hostMigration": host_migration,
        "historySize": 256, "stateBytes": 3 if with_state else 0,
    }  # fmt: skip
    async with client.pipeline(transaction=True) as tx:
        tx.set(Legacy.room(code), json.dumps(room), px=ttl_ms)
        tx.sadd(Legacy.users(code), *ids)
        tx.pexpire(Legacy.users(code), ttl_ms)
        for n, (user_id, name) in enumerate(zip(ids, names, strict=True)):
            online = n < connected
            user = {"id": user_id, "displayName": name, "roomCode": code, "isConnected": online,
                    "socketId": f"sock{n}" if online else "", "instance": instance if online else "",
                    "joinedAt": now, "joinSeq": n + 1}  # fmt: skip
            tx.set(Legacy.user(user_id), json.dumps(user), px=ttl_ms)
            if online:
                tx.sadd(Legacy.instance_sockets(instance), f"{code}|{user_id}|sock{n}")
        tx.rpush(Legacy.history(code), *history)
        tx.pexpire(Legacy.history(code), ttl_ms)
        if with_state:
            entry = {"version": seq, "visibleTo": "all", "writableBy": "host", "size": 3}
            tx.hset(Legacy.state(code), "score", json.dumps(entry))
            tx.hset(Legacy.values(code), "score", "[1]")
            tx.pexpire(Legacy.state(code), ttl_ms)
            tx.pexpire(Legacy.values(code), ttl_ms)
        tx.zadd(Legacy.INDEX, {code: now})
        tx.zadd(Legacy.EXPIRY, {code: now + ttl_ms})
        tx.hset(Legacy.INCARNATIONS, code, incarnation)
        if connected:
            tx.zadd(Legacy.INSTANCES, {instance: now - 3_600_000})  # stopped an hour ago
        await tx.execute()
    return OldRoom(code, ids[0], ids, incarnation, now, ttl_ms, history, room)


async def expire_old_room(client: aioredis.Redis, room: OldRoom) -> None:
    """As Redis expired it, before the old sweep told anyone: its index entries and incarnation stay."""
    await client.delete(Legacy.room(room.code))
