"""Every Redis key and pub/sub channel name that roomd and roomctl use from Python.

One owner for the key layout: Python code asks this module for a name and never
formats one itself, and tests ask it too rather than repeating a string. The
Lua scripts still build the per-room names themselves (``lua/prelude.lua``:
``room_key``, ``users_key``, ``user_key``, ``channel``, ``history_key``, ``state_key``,
``values_key``, ``HOSTLESS_KEY``; ``'rooms:index'`` and
``'rooms:expiry'`` in the scripts; ``'throttle:'`` in ``lua/throttle.lua``), so
a change here must be made there in the same commit. Any change of a name or of
what a key holds is a Redis-layout change: it is listed for operators in
CHANGELOG.md, because rooms written by the old layout become invisible to the
new one.

All times stored in these keys are integer milliseconds since the epoch. A
single Redis (not Cluster) is assumed: the names carry no ``{...}`` hash tag.
"""

from __future__ import annotations

ROOM_PREFIX = "room:"
EVENTS_SUFFIX = ":events"

INDEX_KEY = "rooms:index"
"""Sorted set: room code -> ``createdAt``. Lists rooms newest first (``roomctl rooms
list``) without SCAN. Written by the create script, cleared by the room's deletion."""

EXPIRY_KEY = "rooms:expiry"
"""Sorted set: room code -> ``expiresAt``, re-armed with the room's TTL on every state
change. Swept every second by each roomd instance, so members of a room that Redis
expired receive ``room:closed {reason: EXPIRED}`` (exactly once: the script's ZREM
decides which instance tells them)."""

INCARNATIONS_KEY = "rooms:incarnations"
"""Hash: room code -> incarnation id of the room now holding the code, kept as long as
the code is in :data:`EXPIRY_KEY`. Every event's bus meta carries it (``inc``), so a
socket still open on an older room that had the same code drops the new room's events."""

INSTANCES_KEY = "roomd:instances"
"""Sorted set: instance id (``host:pid:port:random``, new at every start) -> last heartbeat
(Redis's clock), written every second by each roomd process (``lua/heartbeat.lua``). Read
by ``roomctl stats``, and by live instances to find dead ones (older than
INSTANCE_TIMEOUT_MS) whose members must be marked disconnected; ``lua/reap.lua`` removes
an entry once its socket index is empty."""

THROTTLE_PREFIX = "throttle:"
"""Prefix of the HTTP rate-limit counters ``throttle:{client}:{window}``: strings
holding the request count of one fixed window, expiring after two windows. Built
in ``lua/throttle.lua``; Python never reads them."""

HOSTLESS_KEY = "rooms:hostless"
"""Sorted set: room code -> ms since which the host of a ``hostMigration: "disconnect"``
room has had no socket (``room.hostAwaySince``). Swept every second by each roomd
instance: past HOST_GRACE_SECONDS the host role passes to the longest-standing
connected member (``lua/host_grace.lua`` re-checks; ``track_host`` in the prelude
keeps it true to presence). Rooms with nobody connected leave it until someone connects."""

BUS_SELF_PREFIX = "roomd:bus:"
"""Prefix of each process's private pub/sub channel ``roomd:bus:{16 hex}``: the bus
publishes a ping there and must hear it back, or it rebuilds its deaf subscriber
connection. Nothing else is published on it."""


def room_key(code: str) -> str:
    """``room:{code}``: string, the room's JSON record (host, lock, capacity, ``seq``,
    ``joinSeq``, times). Carries the room's TTL; its absence means the room is gone."""
    return f"{ROOM_PREFIX}{code}"


def users_key(code: str) -> str:
    """``room:{code}:users``: set of the member user ids, same TTL as the room."""
    return f"{ROOM_PREFIX}{code}:users"


def user_key(user_id: str) -> str:
    """``user:{id}``: string, the member's JSON record (display name, room, presence,
    current socket id, join order), same TTL as their room."""
    return f"user:{user_id}"


def history_key(code: str) -> str:
    """``room:{code}:history``: list of the room's last ``historySize`` bus messages (as
    published, recipients in their meta), newest last, same TTL as the room. ``?since=``
    replays are read from it."""
    return f"{ROOM_PREFIX}{code}:history"


def state_key(code: str) -> str:
    """``room:{code}:state``: hash, state key -> JSON ``{version, visibleTo, writableBy, size}``
    of each shared state entry (its value is in :func:`values_key`), same TTL as the room."""
    return f"{ROOM_PREFIX}{code}:state"


def values_key(code: str) -> str:
    """``room:{code}:state:values``: hash, state key -> the entry's value as JSON text, kept
    apart so that scripts splice it into frames verbatim, never re-encoding it."""
    return f"{ROOM_PREFIX}{code}:state:values"


def instance_sockets_key(instance: str) -> str:
    """``roomd:instance:{id}:sockets``: set of ``code|userId|socketId`` entries, one per
    socket the instance holds, so live instances can disconnect the members of a dead
    one without SCAN."""
    return f"roomd:instance:{instance}:sockets"


def channel(code: str) -> str:
    """``room:{code}:events``: the pub/sub channel of a room's events. Each message is
    ``<meta JSON>\\n<frame JSON>``, published by the script that made the change."""
    return f"{ROOM_PREFIX}{code}{EVENTS_SUFFIX}"


def room_of_channel(name: str) -> str | None:
    """The room code of a :func:`channel` name; None for any other channel."""
    if name.startswith(ROOM_PREFIX) and name.endswith(EVENTS_SUFFIX):
        return name[len(ROOM_PREFIX) : -len(EVENTS_SUFFIX)]
    return None


def bus_self_channel(token: str) -> str:
    """``roomd:bus:{token}``: one process's private self-check channel (see :data:`BUS_SELF_PREFIX`)."""
    return f"{BUS_SELF_PREFIX}{token}"
