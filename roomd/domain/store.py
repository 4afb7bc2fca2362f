"""The Redis model of rooms and its atomic operations.

Keys (named in :mod:`roomd.domain.keys`, re-exported here; see the README's Redis section):

* ``room:{code}`` - JSON of the room; ``room:{code}:users`` - SET of member ids;
  ``user:{id}`` - JSON of a member. All share the room's TTL, refreshed on
  every state change.
* ``rooms:index`` - ZSET code -> creation time, for listing rooms newest first.
* ``rooms:expiry`` - ZSET code -> expiry time, swept to tell members of expired rooms.
  A code stays taken until its entry is swept.
* ``rooms:incarnations`` - HASH code -> the incarnation id of the room holding it.
* ``roomd:instances`` - ZSET instance id -> last heartbeat (Redis time), for
  ``roomctl stats`` and to find dead instances.
* ``roomd:instance:{id}:sockets`` - SET of ``code|userId|socketId`` an instance holds,
  so live instances can disconnect the members of a dead one without SCAN.
* ``room:{code}:history`` - LIST of the room's last bus messages (``?since=`` replays);
  ``room:{code}:state`` - HASH key -> entry JSON {version, visibleTo, writableBy, size};
  ``room:{code}:state:values`` - HASH key -> the entry's value as JSON text.
* ``rooms:hostless`` - ZSET code -> since when its host has had no socket
  (``hostMigration: "disconnect"``), swept to hand the host role over.

Each mutation is one Lua script that also PUBLISHes its event on
``room:{code}:events``; roomd and roomctl share this one implementation.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roomd.config import Settings
from roomd.domain import roomcodes
from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.domain.keys import (  # noqa: F401 - re-exported: callers and tests import them from here too
    EXPIRY_KEY,
    HOSTLESS_KEY,
    INCARNATIONS_KEY,
    INDEX_KEY,
    INSTANCES_KEY,
    channel,
    history_key,
    instance_sockets_key,
    room_key,
    state_key,
    user_key,
    users_key,
    values_key,
)
from roomd.protocol import ClosedReason, ErrorCode

T = TypeVar("T")

REAP_BATCH = 100  # socket-index entries of a dead instance handled by one script
REAP_INSTANCES = 10  # dead instances looked at per heartbeat
CODE_CANDIDATES = 3  # codes offered to one create script
CODE_ATTEMPTS = 6  # create scripts tried before ROOM_CODE_GENERATION_FAILED
POOL_SIZE = 64  # Redis connections per process; commands beyond wait for one

_LUA_DIR = Path(__file__).with_name("lua")


def now_ms() -> int:
    return int(time.time() * 1000)


def new_user_id() -> str:
    """A random id that never begins with ``-``: typed as a command argument, it would read as an option."""
    while True:
        user_id = secrets.token_urlsafe(16)
        if not user_id.startswith("-"):
            return user_id


@cache
def _lua(name: str) -> str:
    return (_LUA_DIR / "prelude.lua").read_text() + "\n" + (_LUA_DIR / f"{name}.lua").read_text()


@dataclass(frozen=True)
class Membership:
    room_code: str
    user_id: str


@dataclass(frozen=True)
class Snapshot:
    """What a connecting socket sends as ``room:state``; ``seq`` orders it among events.

    ``state`` holds only the shared state entries this member may read.
    """

    room: dict[str, Any]
    users: list[dict[str, Any]]
    seq: int
    incarnation: str = ""  # of the room; events of another incarnation (a reused code) are not for this socket
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resumed:
    """A connect with ``since`` whose missed events are all still in the room's history.

    ``messages`` are the raw bus messages after ``since`` (not yet filtered for the
    member: the transport applies the same rules as for live events); ``seq`` is the
    room's sequence number once connected.
    """

    since: int
    seq: int
    messages: list[bytes]
    incarnation: str = ""


@dataclass(frozen=True)
class RoomOptions:
    """Per-room rules chosen at create (``playerMessages``, ``hostMigration``)."""

    player_messages: str = "host"  # "host" | "all"
    host_migration: str = "leave"  # "leave" | "disconnect"


@dataclass(frozen=True)
class SocketRef:
    """One entry of an instance's socket index."""

    room_code: str
    user_id: str
    socket_id: str


@dataclass(frozen=True)
class RemovalResult:
    new_host_id: str | None
    room_deleted: bool
    seq: int = 0


class Replaced(Exception):
    """The user's current socket is another one (it replaced this one)."""


class RoomStore:
    """Atomic room operations over one ``redis.asyncio`` client."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_seconds: int,
        code_alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ",
        code_length: int = 4,
        max_users: int = 10,
        command_timeout: float | None = None,
        instance_timeout_ms: int = 15_000,
        history_size: int = 256,
        state_max_keys: int = 256,
        state_max_bytes: int = 262_144,
    ) -> None:
        self.client = client
        self.history_size = history_size
        self.state_max_keys = state_max_keys
        self.state_max_bytes = state_max_bytes
        self.command_timeout = command_timeout
        self.ttl_ms = ttl_seconds * 1000
        self.instance_timeout_ms = instance_timeout_ms
        # The roomd instance whose sockets this store connects ("" for roomctl and
        # tools): recorded with each socket so live instances can clean up after it.
        self.instance_id = ""
        self.code_alphabet = code_alphabet
        self.code_length = code_length
        self.max_users = max_users
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(_lua(name))
            for name in (
                "create",
                "join",
                "connect",
                "disconnect",
                "remove_member",
                "set_lock",
                "transfer_host",
                "close",
                "expire",
                "snapshot",
                "heartbeat",
                "reap",
                "extend",
                "game_send",
                "state_set",
                "state_delete",
                "host_grace",
            )
        }

    @classmethod
    def from_settings(
        cls, client: aioredis.Redis, settings: Settings, command_timeout: float | None = None
    ) -> RoomStore:
        """A store with roomd's room rules (TTL, codes, capacity): roomd and roomctl build it alike."""
        return cls(
            client,
            ttl_seconds=settings.room_ttl_seconds,
            code_alphabet=settings.room_code_alphabet,
            code_length=settings.room_code_length,
            max_users=settings.room_max_users,
            command_timeout=settings.redis_command_timeout if command_timeout is None else command_timeout,
            instance_timeout_ms=settings.instance_timeout_ms,
            history_size=settings.room_history_size,
            state_max_keys=settings.room_state_max_keys,
            state_max_bytes=settings.room_state_max_bytes,
        )

    async def _run(self, name: str, *args: Any) -> Any:
        return await guard(self._scripts[name](keys=[], args=list(args)), self.command_timeout)

    # -- membership -------------------------------------------------------

    async def create_room(
        self, display_name: str, max_users: int | None = None, options: RoomOptions | None = None
    ) -> Membership:
        """Create a room with ``display_name`` as host; the code is claimed atomically."""
        user_id = new_user_id()
        limit = max_users or self.max_users
        incarnation = secrets.token_hex(8)
        opts = options or RoomOptions()
        rules = json.dumps(
            {
                "playerMessages": opts.player_messages,
                "hostMigration": opts.host_migration,
                "historySize": self.history_size,
            }
        )
        for _ in range(CODE_ATTEMPTS):
            offered = roomcodes.candidates(self.code_alphabet, self.code_length, CODE_CANDIDATES)
            if not offered:
                continue
            code = await self._run(
                "create", user_id, display_name, limit, self.ttl_ms, now_ms(), incarnation, rules, *offered
            )
            if code:
                return Membership(_text(code), user_id)
        raise DomainError(ErrorCode.ROOM_CODE_GENERATION_FAILED)

    async def join_room(self, code: str, display_name: str) -> Membership:
        user_id = new_user_id()
        await self._run("join", code, user_id, display_name, self.ttl_ms, now_ms())
        return Membership(code, user_id)

    async def check_member(self, code: str, user_id: str) -> None:
        """Raise ``ROOM_NOT_FOUND`` / ``MEMBER_NOT_FOUND`` unless the membership is live."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(room_key(code))
            pipe.sismember(users_key(code), user_id)
            exists, member = await guard(pipe.execute(), self.command_timeout)
        if not exists:
            raise DomainError(ErrorCode.ROOM_NOT_FOUND)
        if not member:
            raise DomainError(ErrorCode.MEMBER_NOT_FOUND)

    # -- presence ---------------------------------------------------------

    async def connect(self, code: str, user_id: str, socket_id: str) -> Snapshot:
        """Mark the user connected on ``socket_id``, held by this store's instance; returns the ``room:state``."""
        result = await self.connect_since(code, user_id, socket_id, None)
        assert isinstance(result, Snapshot)
        return result

    async def connect_since(self, code: str, user_id: str, socket_id: str, since: int | None) -> Snapshot | Resumed:
        """Mark the user connected; with ``since``, the missed events if the history still has them all.

        One script, so nothing can happen between the history read and the
        connection: the missed events, then live events newer than ``seq``, are
        exactly everything after ``since``.
        """
        since_arg = "" if since is None else since
        raw = await self._run("connect", code, user_id, socket_id, self.ttl_ms, now_ms(), self.instance_id, since_arg)
        if _text(raw[0]) == "resumed":
            return Resumed(
                since=since or 0, seq=int(raw[1]), messages=[_bytes(m) for m in raw[3:]], incarnation=_text(raw[2])
            )
        return _snapshot(raw[1], raw[2])

    async def snapshot(self, code: str, user_id: str, socket_id: str) -> Snapshot:
        """Read-only ``room:state`` for a live socket that may have missed events.

        Raises ``Replaced`` if another socket has taken over the user meanwhile.
        """
        try:
            raw = await self._run("snapshot", code, user_id, socket_id)
            return _snapshot(raw[0], raw[1])
        except ResponseError as exc:
            if str(exc).strip() == "REPLACED":
                raise Replaced() from None
            raise

    async def disconnect(self, code: str, user_id: str, socket_id: str) -> bool:
        """Mark the user disconnected if ``socket_id`` is still their socket; it leaves the socket index anyway."""
        return bool(await self._run("disconnect", code, user_id, socket_id, self.ttl_ms, now_ms(), self.instance_id))

    # -- instances ----------------------------------------------------------

    async def heartbeat(self) -> list[str]:
        """Record this instance as alive; returns other instances whose heartbeat went stale.

        Staleness is INSTANCE_TIMEOUT_MS by Redis's clock, which every instance
        shares. Stale entries stay in ``roomd:instances`` until :meth:`reap_instance`
        has disconnected their members.
        """
        stale = await self._run("heartbeat", self.instance_id, self.instance_timeout_ms, REAP_INSTANCES + 1)
        return [i for i in map(_text, stale) if i != self.instance_id][:REAP_INSTANCES]

    async def reap_instance(self, instance: str, *, retire: bool = False) -> int:
        """Disconnect the members an instance held, if it is dead; returns how many were marked.

        Batches of :data:`REAP_BATCH`, each one script that checks again that the
        instance is stale: several live instances may reap the same dead one at
        once, and each member still gets exactly one ``user:disconnected``.
        ``retire`` skips the staleness check: a draining instance retiring itself.
        """
        marked = 0
        while True:
            count, done = await self._run(
                "reap", instance, self.instance_timeout_ms, REAP_BATCH, self.ttl_ms, now_ms(), "1" if retire else "0"
            )
            marked += int(count)
            if int(done) != 0:
                return marked

    async def instance_sockets(self, instance: str | None = None) -> list[SocketRef]:
        """The socket index of ``instance`` (default: this store's)."""
        raw = await guard(
            self.client.smembers(instance_sockets_key(instance or self.instance_id)), self.command_timeout
        )
        refs = []
        for entry in raw:
            code, _, rest = _text(entry).partition("|")
            user_id, _, socket_id = rest.partition("|")
            refs.append(SocketRef(code, user_id, socket_id))
        return refs

    # -- host and admin actions (actor None = administrator) --------------

    async def leave(self, code: str, user_id: str) -> RemovalResult:
        raw = await self._run(
            "remove_member", code, user_id, "", "leave", self.ttl_ms, now_ms(), self.instance_timeout_ms
        )
        return _removal(raw)

    async def kick(self, code: str, actor_id: str | None, target_id: str) -> RemovalResult:
        raw = await self._run(
            "remove_member", code, target_id, actor_id or "", "kick", self.ttl_ms, now_ms(), self.instance_timeout_ms
        )
        return _removal(raw)

    # Every mutation returns (or carries) the room's seq after its effect: the
    # WebSocket transport acknowledges a client frame with it.

    async def set_lock(self, code: str, actor_id: str | None, wanted: str = "toggle") -> bool:
        """``wanted`` is ``toggle``, ``lock`` or ``unlock``; returns whether the room is now locked."""
        return (await self.set_lock_seq(code, actor_id, wanted))[0]

    async def set_lock_seq(self, code: str, actor_id: str | None, wanted: str = "toggle") -> tuple[bool, int]:
        """:meth:`set_lock`, with the room's seq after it."""
        if wanted not in ("toggle", "lock", "unlock"):
            raise ValueError(wanted)
        locked, seq = await self._run("set_lock", code, actor_id or "", wanted, self.ttl_ms, now_ms())
        return bool(locked), int(seq)

    async def transfer_host(self, code: str, actor_id: str | None, new_host_id: str) -> int:
        """Make ``new_host_id`` the host; returns the seq of ``room:host_updated``."""
        return int(await self._run("transfer_host", code, actor_id or "", new_host_id, self.ttl_ms, now_ms()))

    async def close_room(self, code: str, actor_id: str | None) -> int:
        """Close the room for everyone; returns the seq of ``room:closed``."""
        reason = ClosedReason.ADMIN_CLOSED if actor_id is None else ClosedReason.HOST_CLOSED
        return int(await self._run("close", code, actor_id or "", reason.value))

    # -- the game channel (actor None = administrator) ----------------------

    async def send_game_message(self, code: str, sender_id: str, to: str | list[str], kind: str, data_json: str) -> int:
        """Relay ``game:message`` to ``to`` ("host", "all", "others" or member ids); ``data_json`` verbatim."""
        raw = await self._run("game_send", code, sender_id, json.dumps(to), kind, data_json, self.ttl_ms, now_ms())
        return int(raw)

    async def set_state(
        self,
        code: str,
        actor_id: str | None,
        key: str,
        value_json: str,
        *,
        visible_to: str | list[str] | None = None,
        writable_by: str | list[str] | None = None,
        if_version: int | None = None,
    ) -> int:
        """Create or change a state entry (``value_json`` verbatim); returns its new version (= seq)."""
        raw = await self._run(
            "state_set",
            code,
            actor_id or "",
            key,
            value_json,
            "" if visible_to is None else json.dumps(visible_to),
            "" if writable_by is None else json.dumps(writable_by),
            "" if if_version is None else int(if_version),
            self.state_max_keys,
            self.state_max_bytes,
            self.ttl_ms,
            now_ms(),
        )
        return int(raw)

    async def delete_state(self, code: str, actor_id: str | None, key: str, *, if_version: int | None = None) -> int:
        """Delete a state entry (host or administrator); returns the room's seq after it."""
        version = "" if if_version is None else int(if_version)
        return int(await self._run("state_delete", code, actor_id or "", key, version, self.ttl_ms, now_ms()))

    async def get_state(self, code: str) -> dict[str, dict[str, Any]]:
        """Every entry of a room, as an administrator sees it: key -> {value, version, visibleTo, writableBy, size}."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(state_key(code))
            pipe.hgetall(values_key(code))
            entries, values = await guard(pipe.execute(), self.command_timeout)
        found = {}
        for raw_key, raw_entry in entries.items():
            value = values.get(raw_key)
            if value is None:
                continue
            entry = json.loads(raw_entry)
            found[_text(raw_key)] = {
                "value": json.loads(value),
                "version": entry["version"],
                "visibleTo": entry["visibleTo"],
                "writableBy": entry["writableBy"],
                "size": entry.get("size", len(value)),
            }
        return found

    # -- host grace (hostMigration "disconnect") ----------------------------

    async def migrate_absent_hosts(self, grace_ms: int, limit: int = 100) -> list[str]:
        """Hand the host role over in rooms whose host has had no socket for ``grace_ms``.

        Run by every instance (like the expiry sweep): the timer lives in Redis,
        so it survives the process that held the host's socket (whose members the
        reaper marks disconnected). Each room is one script that re-checks, so
        concurrent sweeps change a room once. Returns the codes this caller changed.
        """
        now = now_ms()
        due = await guard(
            self.client.zrangebyscore(HOSTLESS_KEY, "-inf", now - grace_ms, start=0, num=limit), self.command_timeout
        )
        changed = []
        for raw in due:
            code = _text(raw) if isinstance(raw, bytes | str) else str(raw)  # members only, never (member, score)
            if await self._run("host_grace", code, grace_ms, self.ttl_ms, now, self.instance_timeout_ms):
                changed.append(code)
        return changed

    async def close_if_idle(self, code: str, idle_since_ms: int) -> bool:
        """Admin-close ``code`` if nobody is connected and it has not changed since ``idle_since_ms``.

        For ``roomctl rooms close --idle-for``. The check and the close are one
        transaction: WATCH on the room record, which every join, leave, connect,
        disconnect and host action rewrites, then the close script (same arguments
        as :meth:`close_room` with no actor) in MULTI/EXEC. A room that came back to
        life in between, or is gone, is left alone: returns False.
        """
        async with self.client.pipeline(transaction=True) as pipe:
            try:
                await guard(pipe.watch(room_key(code)), self.command_timeout)
                raw = await guard(pipe.get(room_key(code)), self.command_timeout)
                if raw is None:
                    return False
                room = json.loads(raw)
                if int(room.get("updatedAt", room["createdAt"])) > idle_since_ms:
                    return False
                ids = [user_key(_text(i)) for i in await guard(pipe.smembers(users_key(code)), self.command_timeout)]
                users = await guard(pipe.mget(ids), self.command_timeout) if ids else []
                if any(json.loads(u).get("isConnected") for u in users if u is not None):
                    return False
                pipe.multi()
                await self._scripts["close"](keys=[], args=[code, "", ClosedReason.ADMIN_CLOSED.value], client=pipe)
                (done,) = await guard(pipe.execute(raise_on_error=False), self.command_timeout)
            except WatchError:
                return False
        if isinstance(done, ResponseError):  # ROOM_NOT_FOUND: expired meanwhile
            if str(done).strip() == ErrorCode.ROOM_NOT_FOUND.value:
                return False
            raise done
        return True

    async def extend(self, code: str) -> int:
        """Re-arm the room's TTL (its own ``ttlMs`` if the record has one, else the configured one).

        An administrator's "keep this room"; no event, ``updatedAt`` unchanged. Returns the
        new ``expiresAt`` (ms); ``ROOM_NOT_FOUND`` if the room is gone.
        """
        return int(await self._run("extend", code, self.ttl_ms, now_ms()))

    # -- expiry -----------------------------------------------------------

    async def expire_due_rooms(self, limit: int = 100) -> list[str]:
        """Close rooms Redis has expired; returns the codes this caller closed."""
        now = now_ms()
        due = await guard(self.client.zrangebyscore(EXPIRY_KEY, "-inf", now, start=0, num=limit), self.command_timeout)
        closed = []
        for raw in due:
            code = _text(raw) if isinstance(raw, bytes | str) else str(raw)  # members only, never (member, score)
            if await self._run("expire", code, now):
                closed.append(code)
        return closed

    # -- reads ------------------------------------------------------------

    async def get_room(self, code: str) -> dict[str, Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(room_key(code))
            pipe.scard(users_key(code))
            raw, count = await guard(pipe.execute(), self.command_timeout)
        if raw is None:
            raise DomainError(ErrorCode.ROOM_NOT_FOUND)
        return public_room(json.loads(raw), int(count))

    async def get_members(self, code: str) -> list[dict[str, Any]]:
        """Members as stored (including internals), oldest first. Empty if the room is gone."""
        ids = await guard(self.client.smembers(users_key(code)), self.command_timeout)
        if not ids:
            return []
        raws = await guard(self.client.mget([user_key(_text(i)) for i in ids]), self.command_timeout)
        users = [json.loads(r) for r in raws if r is not None]
        return sorted(users, key=lambda u: u.get("joinSeq", 0))

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        raw = await guard(self.client.get(user_key(user_id)), self.command_timeout)
        return None if raw is None else json.loads(raw)

    async def ping(self) -> bool:
        return bool(await guard(self.client.ping(), self.command_timeout))


def iso(ms: int | float | None) -> str | None:
    """Epoch milliseconds as an ISO-8601 UTC timestamp with millisecond precision."""
    if ms is None:
        return None
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def public_room(room: dict[str, Any], member_count: int) -> dict[str, Any]:
    """The client-facing view of a stored room (internal counters removed)."""
    return {
        "code": room["code"],
        "hostId": room["hostId"],
        "isLocked": bool(room["isLocked"]),
        "maxUsers": int(room["maxUsers"]),
        "state": room.get("state", "open"),
        "memberCount": member_count,
        "createdAt": iso(room["createdAt"]),
        "updatedAt": iso(room.get("updatedAt", room["createdAt"])),
        "expiresAt": iso(room.get("expiresAt")),
        "playerMessages": room.get("playerMessages") or "host",
        "hostMigration": room.get("hostMigration") or "leave",
    }


def _snapshot(raw: bytes | str, state_raw: bytes | str) -> Snapshot:
    snapshot = json.loads(raw)
    room = snapshot["room"]
    return Snapshot(
        room=public_room(room, len(snapshot["users"])),
        users=snapshot["users"],
        seq=int(room["seq"]),
        incarnation=str(room.get("incarnation") or ""),
        state=json.loads(state_raw),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _removal(raw: Iterable[Any]) -> RemovalResult:
    new_host, deleted, seq = list(raw)
    new_host = _text(new_host)
    return RemovalResult(new_host_id=new_host or None, room_deleted=bool(int(deleted)), seq=int(seq))


_DOMAIN_CODES = {code.value for code in ErrorCode}


async def guard(awaitable: Awaitable[T], timeout: float | None = None) -> T:
    """Map a script's ``error_reply`` to DomainError and lost Redis to StoreUnavailable.

    ``timeout`` bounds the whole call, retries included, so a request never
    hangs longer than REDIS_COMMAND_TIMEOUT while Redis does not answer.
    """
    try:
        async with asyncio.timeout(timeout):
            return await awaitable
    except TimeoutError as exc:
        raise StoreUnavailable("Redis did not answer in time") from exc
    except ResponseError as exc:
        message = str(exc).strip()
        code, _, detail = message.partition(" ")
        if code in _DOMAIN_CODES:
            # A script may add a JSON object of details: 'VERSION_CONFLICT {"version":3}'.
            raise DomainError(ErrorCode(code), data=json.loads(detail) if detail else None) from None
        raise
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(str(exc)) from exc


def make_redis_client(
    url: str,
    *,
    command_timeout: float = 5.0,
    connect_timeout: float = 10.0,
    max_retries: int = 3,
    decode_responses: bool = False,
    max_connections: int = POOL_SIZE,
) -> aioredis.Redis:
    """A client whose commands fail within ``command_timeout`` instead of hanging.

    The pool is a *blocking* one: a burst of commands (a thousand sockets
    dropping at once, each marking its user disconnected) queues for a
    connection instead of failing with "Too many connections".
    """
    from redis.asyncio.connection import BlockingConnectionPool
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=command_timeout,
        socket_timeout=command_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), max_retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
        decode_responses=decode_responses,
        **tcp_options(url),
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def tcp_options(url: str) -> dict[str, Any]:
    """Keepalive for TCP connections (unix sockets take no such option)."""
    return {} if url.startswith("unix:") else {"socket_keepalive": True}
