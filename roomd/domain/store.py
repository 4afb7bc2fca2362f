"""The Redis model of rooms and its atomic operations.

Key names come from :mod:`roomd.domain.keys` (see the README's Redis section): every key of
a room carries the room's ``{CODE}`` hash tag, so each room lives in one cluster slot.

* ``room:{CODE}`` - JSON of the room; ``room:{CODE}:users`` - HASH member id -> member JSON;
  ``room:{CODE}:history`` / ``:state`` / ``:state:values`` - the game channel's keys. All
  share the room's TTL, refreshed on every state change.
* ``room:{CODE}:claim`` - the code's claim (incarnation, createdAt): outlives the record
  until the expiry sweep has told the members of an expired room.
* cross-room indexes - ``rooms:index`` (listing), ``rooms:expiry`` (the expiry sweep's
  schedule), ``rooms:hostless`` (the host grace sweep's), ``roomd:instances`` and each
  instance's socket index.

Each room mutation is one Lua script that receives all its keys as ``KEYS`` (never builds a
name) and publishes its event on ``room:{CODE}:events`` (PUBLISH, or SPUBLISH on a Cluster:
``sharded_pubsub``). Cross-room indexes are never written by a room script: a script returns
*hints* (the host went or came back, the room was deleted, socket-index entries to drop) and
this module applies them right after it, idempotently. The sweeps re-check the room itself
before acting on an index entry and change an entry only if it still holds the score they
read (``lua/settle.lua``), so a lagging or out-of-order index update is repaired, never
acted on. roomd and roomctl share this one implementation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ClusterError, NoScriptError, ResponseError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roomd.config import Settings
from roomd.domain import keys, roomcodes
from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.domain.pipeline import CallPipeline
from roomd.protocol import ClosedReason, ErrorCode

T = TypeVar("T")
log = logging.getLogger("roomd.store")

REAP_BATCH = 100  # socket-index entries of a dead instance read at a time (one script each, concurrently)
SWEEP_BATCH = 100  # due rooms:expiry entries read at a time (one script each, concurrently)
SWEEP_BUDGET = 2_000  # entries one expiry sweep handles at most before the next duty
REAP_INSTANCES = 10  # dead instances looked at per heartbeat
CODE_CANDIDATES = 3  # codes offered per attempt (one create script each: every code is another slot)
CODE_ATTEMPTS = 6  # attempts before ROOM_CODE_GENERATION_FAILED
POOL_SIZE = 64  # Redis connections per process; commands beyond wait for one
CLAIM_GRACE_MS = 86_400_000
POLL_TALLY_MS = 250
"""The least time between two ``poll:tally`` of a room (votes in between are counted, and tallied
together: the host never gets one message per vote)."""
"""How long a room's claim outlives its record (``keys.Layout.claim``): the time the expiry sweep
has to tell the members of an expired room before the code may be handed out anyway (only if
every roomd instance was down that long; normally the sweep comes within a second)."""

ROOM_SCRIPTS = (
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
    "reap",
    "extend",
    "game_send",
    "state_set",
    "state_delete",
    "host_grace",
    "audience_join",
    "audience_connect",
    "audience_disconnect",
    "audience_count",
    "audience_lock",
    "audience_resync",
    "poll_open",
    "poll_vote",
    "poll_tally",
    "poll_close",
)
"""Scripts on one room: the prelude (and polls.lua) is prepended, KEYS are :meth:`keys.Layout.room_keys`."""

INDEX_SCRIPTS = ("heartbeat", "instances", "settle", "throttle")
"""Scripts on one cross-room key (or, throttle, one client's two counters): no prelude."""

_LUA_DIR = Path(__file__).with_name("lua")
_PUBLISH_LINE = "local PUBLISH_CMD = 'PUBLISH'"
_GRACE_LINE = "local CLAIM_GRACE_MS = 86400000"


def now_ms() -> int:
    return int(time.time() * 1000)


def new_user_id() -> str:
    """A random id that never begins with ``-``: typed as a command argument, it would read as an option."""
    while True:
        user_id = secrets.token_urlsafe(16)
        if not user_id.startswith("-"):
            return user_id


@cache
def script_text(name: str, sharded_pubsub: bool = False) -> str:
    """The text of a script as loaded into Redis.

    A room script gets the prelude, in which the publish command is chosen now: PUBLISH on
    one Redis or Sentinel (Redis 6.2 compatible), SPUBLISH (Redis 7) on a Cluster, where
    sharded pub/sub routes a room's events to the node that owns the room's slot.
    """
    body = (_LUA_DIR / f"{name}.lua").read_text()
    if name not in ROOM_SCRIPTS:
        return body
    prelude = (_LUA_DIR / "prelude.lua").read_text()
    assert _PUBLISH_LINE in prelude and _GRACE_LINE in prelude, "prelude.lua: the substituted lines changed"
    prelude = prelude.replace(_PUBLISH_LINE, f"local PUBLISH_CMD = '{'SPUBLISH' if sharded_pubsub else 'PUBLISH'}'")
    prelude = prelude.replace(_GRACE_LINE, f"local CLAIM_GRACE_MS = {CLAIM_GRACE_MS}")
    polls = (_LUA_DIR / "polls.lua").read_text()  # poll helpers: the poll scripts, poll_json for snapshots
    return prelude + "\n" + polls + "\n" + body


@dataclass(frozen=True)
class Membership:
    room_code: str
    user_id: str


@dataclass(frozen=True)
class Snapshot:
    """What a connecting socket sends as ``room:state``; ``seq`` orders it among events.

    ``state`` holds only the shared state entries this member (or viewer) may read; ``extra``
    the fields a room with an audience adds: ``poll`` (the open poll or None) and, for a
    viewer, ``you``.
    """

    room: dict[str, Any]
    users: list[dict[str, Any]]
    seq: int
    incarnation: str = ""  # of the room; events of another incarnation (a reused code) are not for this socket
    state: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


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
    """Per-room rules chosen at create (``playerMessages``, ``hostMigration``, ``audience``)."""

    player_messages: str = "host"  # "host" | "all"
    host_migration: str = "leave"  # "leave" | "disconnect"
    audience: bool = False  # admits viewers (POST /rooms/:code/audience)


@dataclass(frozen=True)
class SocketRef:
    """One entry of an instance's socket index."""

    room_code: str
    user_id: str
    socket_id: str


@dataclass(frozen=True)
class PollVote:
    """A vote's effect: the room's ``seq`` (for the ack) and, if the tally it changed could not
    be published yet, when it is due (ms): the caller's instance runs :meth:`RoomStore.tally_poll`
    then (a nudge: if it never comes, the next vote or the close publishes the counts anyway)."""

    seq: int
    tally_due: int | None = None


@dataclass(frozen=True)
class RemovalResult:
    new_host_id: str | None
    room_deleted: bool
    seq: int = 0


class Replaced(Exception):
    """The user's current socket is another one (it replaced this one)."""


class LuaScript:
    """A script run by its SHA; on ``NOSCRIPT``, by its text on the same node (which caches it there).

    redis-py's own ``register_script`` answers NOSCRIPT with ``SCRIPT LOAD``, which a
    ``RedisCluster`` sends to *every* master: while one master is down (a failover),
    a script's first run on any healthy shard then fails. ``EVAL`` routes by the
    script's keys, like ``EVALSHA``, so only the room's own shard is involved.

    With a ``pipeline`` (one Redis or Sentinel: :func:`script_pipeline`) the call goes
    through it, batched with the other calls of the same loop iteration; on a Cluster
    through the client (redis-py routes it to the slot's node).
    """

    __slots__ = ("client", "pipeline", "sha", "text")

    def __init__(self, client: aioredis.Redis, text: str, pipeline: CallPipeline | None = None) -> None:
        self.client = client
        self.pipeline = pipeline
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        pipeline = self.pipeline
        if pipeline is not None:
            try:
                return await pipeline.execute("EVALSHA", self.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await pipeline.execute("EVAL", self.text, len(keys), *keys, *args)
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.client.eval(self.text, len(keys), *keys, *args)


def script_pipeline(client: aioredis.Redis, command_timeout: float | None) -> CallPipeline | None:
    """The auto-pipelining connection for ``client``'s scripts, or None on a Cluster.

    A ``RedisCluster`` has no single pool: its calls keep redis-py's path (routing a
    batch by slot to several nodes is possible, not done yet).
    """
    if not isinstance(client, aioredis.Redis):  # a RedisCluster (not a subclass of Redis)
        return None
    pool = client.connection_pool
    connect_timeout = pool.connection_kwargs.get("socket_connect_timeout")
    if connect_timeout is not None and command_timeout is not None:
        connect_timeout += command_timeout  # the connect, then the handshake's replies
    # A caller timing out (command_timeout) while Redis has answered nothing for half that
    # long means the connection is stuck, not that one call was slow: it is replaced.
    stall = None if command_timeout is None else command_timeout / 2
    return CallPipeline(pool, stall_timeout=stall, connect_timeout=connect_timeout)


@dataclass(frozen=True)
class AudienceView:
    """The viewer ``room:state`` of a batch of viewers (:meth:`RoomStore.audience_snapshots`): what they
    share (``base``: room, users, the entries visible to "audience", ``extra["poll"]`` with ``vote``
    None), and each one's own part: audience id -> (display name, vote), for the still admitted."""

    base: Snapshot
    viewers: dict[str, tuple[str, str | None]]


class RoomStore:
    """Atomic room operations over one ``redis.asyncio`` client (or a ``RedisCluster``)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_seconds: int,
        code_alphabet: str = Settings.room_code_alphabet,  # the defaults have one owner: Settings
        code_length: int = Settings.room_code_length,
        max_users: int = Settings.room_max_users,
        command_timeout: float | None = None,
        instance_timeout_ms: int = Settings.instance_timeout_ms,
        history_size: int = Settings.room_history_size,
        state_max_keys: int = Settings.room_state_max_keys,
        state_max_bytes: int = Settings.room_state_max_bytes,
        sharded_pubsub: bool = False,
        layout: keys.Layout | None = None,
    ) -> None:
        self.client = client
        self.keys = layout or keys.layout()
        self.sharded_pubsub = sharded_pubsub
        self.history_size = history_size
        self.state_max_keys = state_max_keys
        self.state_max_bytes = state_max_bytes
        self.command_timeout = command_timeout
        self.ttl_ms = ttl_seconds * 1000
        self.instance_timeout_ms = instance_timeout_ms
        # The roomd instance whose sockets this store connects ("" for roomctl and
        # tools): recorded with each socket so live instances can clean up after it.
        self.instance_id = ""
        # Sockets connected while their socket-index entry could not be written (the shard of
        # the instance's cross-room keys was failing over): socket id -> (room code, user id).
        # Reconciliation writes the entry later; until then the socket is not judged missing.
        self.unindexed: dict[str, tuple[str, str]] = {}
        self.code_alphabet = code_alphabet
        self.code_length = code_length
        self.max_users = max_users
        # One pipelined connection per store for every script call (see LuaScript).
        self.pipeline = script_pipeline(client, command_timeout)
        self._scripts: dict[str, LuaScript] = {
            name: LuaScript(client, script_text(name, sharded_pubsub), self.pipeline)
            for name in ROOM_SCRIPTS + INDEX_SCRIPTS
        }

    @classmethod
    def from_settings(
        cls,
        client: aioredis.Redis,
        settings: Settings,
        command_timeout: float | None = None,
        sharded_pubsub: bool | None = None,
    ) -> RoomStore:
        """A store with roomd's room rules (TTL, codes, capacity): roomd and roomctl build it alike.

        ``sharded_pubsub`` (SPUBLISH) defaults to the settings' topology being a Cluster; roomctl,
        whose room settings carry no Redis variables, passes what its target is.

        Applies REDIS_KEY_PREFIX to the whole process (:func:`keys.configure`), so the bus and
        every other name built from here on agree with the store's.
        """
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
            sharded_pubsub=settings.redis_topology == "cluster" if sharded_pubsub is None else sharded_pubsub,
            layout=keys.configure(settings.redis_key_prefix),
        )

    # -- running scripts ------------------------------------------------------

    async def _room_raw(self, name: str, code: str, *args: Any) -> tuple[Any, dict[str, Any]]:
        """Run a room script on ``code``'s keys: (its value, its hints for the cross-room indexes)."""
        value, hints = await guard(
            self._scripts[name](keys=self.keys.room_keys(code), args=[code, *args]), self.command_timeout
        )
        return value, (json.loads(hints) if hints else {})

    async def _room(self, name: str, code: str, *args: Any) -> Any:
        """Run a room script, then apply its hints to the cross-room indexes; its value."""
        value, hints = await self._room_raw(name, code, *args)
        if hints:
            await self._apply(code, hints)
        return value

    async def _apply(self, code: str, hints: dict[str, Any]) -> None:
        """Bring the cross-room indexes up to date with what a room script did (idempotent).

        A failure here (Redis lost right after the script) does not fail the operation, which
        happened: the index is repaired later (a hostless room by the expiry sweep's re-check
        or the next connect, a stale index entry by the sweeps, a stale socket-index entry by
        the owning instance's reconciliation or its reaper).
        """
        updates: list[Awaitable[Any]] = []
        member = keys.scheduled(code, str(hints.get("inc", "")))
        if "hostless" in hints:
            updates.append(self.client.zadd(self.keys.hostless, {member: int(hints["hostless"])}))
        if "hosted" in hints:
            updates.append(self._settle(self.keys.hostless, member, "eq", int(hints["hosted"])))
        if "gone" in hints:  # this incarnation's entries; the listing's if it is still this room's
            updates.append(self.client.zrem(self.keys.expiry, member))
            updates.append(self.client.zrem(self.keys.hostless, member))
            updates.append(self._settle(self.keys.index, code, "eq", int(hints["gone"])))
        for instance, entry in hints.get("unindex", ()):
            updates.append(self.client.srem(self.keys.instance_sockets(instance), entry))
        try:
            await guard(asyncio.gather(*updates), self.command_timeout)
        except StoreUnavailable as exc:
            log.warning("room %s: cross-room index update skipped (%s); the sweeps repair it", code, exc)

    def _settle(self, key: str, member: str, mode: str, score: float, new: float | None = None) -> Awaitable[Any]:
        """Change ``member``'s entry in ``key`` only if its score still is ``score`` (``eq``) or
        at most ``score`` (``le``): remove it (``new`` None) or set it to ``new``."""
        args: list[str | int] = [member, mode, int(score), "" if new is None else int(new)]
        return self._scripts["settle"](keys=[key], args=args)

    async def _instances(self, instance: str = "") -> tuple[list[str], int, bool]:
        """(live instance ids, ``instance``'s last heartbeat or -1, whether it is stale), by Redis's clock."""
        live, score, stale = await guard(
            self._scripts["instances"](keys=[self.keys.instances], args=[self.instance_timeout_ms, instance]),
            self.command_timeout,
        )
        return [_text(i) for i in live], int(score), bool(int(stale))

    async def _live_instances(self) -> str:
        """The live instances as the scripts take them (JSON list): members of others cannot inherit."""
        return json.dumps((await self._instances())[0])

    # -- membership -------------------------------------------------------

    async def create_room(
        self, display_name: str, max_users: int | None = None, options: RoomOptions | None = None
    ) -> Membership:
        """Create a room with ``display_name`` as host; the code is claimed atomically.

        One script per candidate code (each code is its own slot), then the room enters
        ``rooms:index`` and ``rooms:expiry``.
        """
        user_id = new_user_id()
        limit = max_users or self.max_users
        incarnation = secrets.token_hex(8)
        opts = options or RoomOptions()
        rules = json.dumps(
            {
                "playerMessages": opts.player_messages,
                "hostMigration": opts.host_migration,
                "historySize": self.history_size,
                "audience": opts.audience,
            }
        )
        for _ in range(CODE_ATTEMPTS):
            for code in roomcodes.candidates(self.code_alphabet, self.code_length, CODE_CANDIDATES):
                now = now_ms()
                created = await self._room(
                    "create", code, user_id, display_name, limit, self.ttl_ms, now, incarnation, rules
                )
                if int(created):
                    await guard(
                        asyncio.gather(
                            self.client.zadd(self.keys.index, {code: now}),
                            self.client.zadd(self.keys.expiry, {keys.scheduled(code, incarnation): now + self.ttl_ms}),
                        ),
                        self.command_timeout,
                    )
                    return Membership(code, user_id)
        raise DomainError(ErrorCode.ROOM_CODE_GENERATION_FAILED)

    async def join_room(self, code: str, display_name: str) -> Membership:
        user_id = new_user_id()
        await self._room("join", code, user_id, display_name, self.ttl_ms, now_ms())
        return Membership(code, user_id)

    async def check_member(self, code: str, user_id: str) -> None:
        """Raise ``ROOM_NOT_FOUND`` / ``MEMBER_NOT_FOUND`` unless the membership is live."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.room(code))
            pipe.hexists(self.keys.users(code), user_id)
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
        exactly everything after ``since``. The socket enters this instance's socket
        index *before* the script (and the instance ``roomd:instances``, if it has not
        heartbeated yet): an instance that dies right after the script is still reaped.
        An entry whose connect failed is dropped by reconciliation.

        Those two keys are cross-room: on a Cluster they live on one shard, maybe not the
        room's. While that shard fails over, the connect goes on without the entry (listed in
        :attr:`unindexed`, written by reconciliation once the shard is back), so rooms on
        healthy shards keep accepting sockets. Only if this instance died within those
        seconds would its member stay "connected" until the room's next change of host or TTL.
        """
        instance = self.instance_id
        if instance and not await self.index_socket(code, user_id, socket_id):
            self.unindexed[socket_id] = (code, user_id)
        since_arg = "" if since is None else since
        raw = await self._room("connect", code, user_id, socket_id, self.ttl_ms, now_ms(), instance, since_arg)
        if _text(raw[0]) == "resumed":
            return Resumed(
                since=since or 0, seq=int(raw[1]), messages=[_bytes(m) for m in raw[3:]], incarnation=_text(raw[2])
            )
        return _snapshot(raw[1], raw[2], raw[3] if len(raw) > 3 else None)

    async def snapshot(self, code: str, user_id: str, socket_id: str) -> Snapshot:
        """Read-only ``room:state`` for a live socket that may have missed events.

        Raises ``Replaced`` if another socket has taken over the user meanwhile.
        """
        try:
            raw = await self._room("snapshot", code, user_id, socket_id)
            return _snapshot(raw[0], raw[1], raw[2] if len(raw) > 2 else None)
        except ResponseError as exc:
            if str(exc).strip() == "REPLACED":
                raise Replaced() from None
            raise

    async def index_socket(self, code: str, user_id: str, socket_id: str) -> bool:
        """Write the socket's entry in this instance's index (and the instance, if new); False if Redis failed."""
        entry = keys.socket_entry(code, user_id, socket_id)
        try:
            await guard(
                asyncio.gather(
                    self.client.sadd(self.keys.instance_sockets(self.instance_id), entry),
                    self.client.zadd(self.keys.instances, {self.instance_id: now_ms()}, nx=True),
                ),
                self.command_timeout,
            )
        except StoreUnavailable:
            return False
        return True

    async def disconnect(self, code: str, user_id: str, socket_id: str) -> bool:
        """Mark the user disconnected if ``socket_id`` is still their socket; it leaves the socket index anyway.

        The index entry goes after the script: an instance that dies in between leaves an entry
        its reaper finds (and skips, the socket being no longer the user's), never a member
        marked connected that no index names.
        """
        marked = bool(await self._room("disconnect", code, user_id, socket_id, self.ttl_ms, now_ms()))
        if self.instance_id:
            entry = keys.socket_entry(code, user_id, socket_id)
            await guard(self.client.srem(self.keys.instance_sockets(self.instance_id), entry), self.command_timeout)
        return marked

    # -- instances ----------------------------------------------------------

    async def heartbeat(self) -> list[str]:
        """Record this instance as alive; returns other instances whose heartbeat went stale.

        Staleness is INSTANCE_TIMEOUT_MS by Redis's clock, which every instance
        shares. Stale entries stay in ``roomd:instances`` until :meth:`reap_instance`
        has disconnected their members.
        """
        stale = await guard(
            self._scripts["heartbeat"](
                keys=[self.keys.instances], args=[self.instance_id, self.instance_timeout_ms, REAP_INSTANCES + 1]
            ),
            self.command_timeout,
        )
        return [i for i in map(_text, stale) if i != self.instance_id][:REAP_INSTANCES]

    async def reap_instance(self, instance: str, *, retire: bool = False) -> int:
        """Disconnect the members an instance held, if it is dead; returns how many this call marked.

        Batches of :data:`REAP_BATCH` index entries, the instance's staleness checked again
        before each. Every entry is one script on its room that marks the member disconnected
        only if the room still records that socket on that instance; the entry leaves the
        index after it. Several live instances may reap the same dead one at once: each
        member still gets exactly one ``user:disconnected`` (the room's script decides).
        Once the index is empty the instance leaves ``roomd:instances`` (unless it
        heartbeated meanwhile). ``retire`` skips the staleness check: a draining instance
        retiring itself.
        """
        marked = 0
        index = self.keys.instance_sockets(instance)
        while True:
            _, score, stale = await self._instances(instance)
            if not (retire or stale):
                return marked
            now = now_ms()
            last_seen = now if score < 0 else min(now, score)
            entries: Any = await guard(self.client.srandmember(index, REAP_BATCH), self.command_timeout)
            if not entries:
                if score >= 0:
                    await guard(self._settle(self.keys.instances, instance, "eq", score), self.command_timeout)
                return marked
            parsed = [p for p in (keys.parse_socket_entry(_text(raw)) for raw in entries) if p is not None]
            args = (instance, self.ttl_ms, now, last_seen)
            results = await asyncio.gather(*(self._room("reap", code, u, sock, *args) for code, u, sock in parsed))
            marked += sum(int(r) for r in results)
            await guard(self.client.srem(index, *entries), self.command_timeout)

    async def instance_sockets(self, instance: str | None = None) -> list[SocketRef]:
        """The socket index of ``instance`` (default: this store's)."""
        raw = await guard(
            self.client.smembers(self.keys.instance_sockets(instance or self.instance_id)), self.command_timeout
        )
        refs = []
        for entry in raw:
            parsed = keys.parse_socket_entry(_text(entry))
            if parsed is not None:
                refs.append(SocketRef(*parsed))
        return refs

    # -- host and admin actions (actor None = administrator) --------------

    async def leave(self, code: str, user_id: str) -> RemovalResult:
        live = await self._live_instances()
        raw = await self._room("remove_member", code, user_id, "", "leave", self.ttl_ms, now_ms(), live)
        return _removal(raw)

    async def kick(self, code: str, actor_id: str | None, target_id: str) -> RemovalResult:
        live = await self._live_instances()
        raw = await self._room("remove_member", code, target_id, actor_id or "", "kick", self.ttl_ms, now_ms(), live)
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
        locked, seq = await self._room("set_lock", code, actor_id or "", wanted, self.ttl_ms, now_ms())
        return bool(locked), int(seq)

    async def transfer_host(self, code: str, actor_id: str | None, new_host_id: str) -> int:
        """Make ``new_host_id`` the host; returns the seq of ``room:host_updated``."""
        return int(await self._room("transfer_host", code, actor_id or "", new_host_id, self.ttl_ms, now_ms()))

    async def close_room(self, code: str, actor_id: str | None) -> int:
        """Close the room for everyone; returns the seq of ``room:closed``."""
        reason = ClosedReason.ADMIN_CLOSED if actor_id is None else ClosedReason.HOST_CLOSED
        return int(await self._room("close", code, actor_id or "", reason.value, ""))

    # -- the audience: viewers of a room created with audience=True (actor None = administrator) --

    async def join_audience(self, code: str, display_name: str, max_viewers: int) -> Membership:
        """Admit a viewer (one script: concurrent admissions never pass ``max_viewers``); the
        membership's ``user_id`` is its audience id. AUDIENCE_DISABLED / AUDIENCE_LOCKED / AUDIENCE_FULL."""
        audience_id = new_user_id()
        await self._room("audience_join", code, audience_id, display_name, max_viewers, now_ms())
        return Membership(code, audience_id)

    async def check_viewer(self, code: str, audience_id: str) -> None:
        """Raise ``ROOM_NOT_FOUND`` / ``MEMBER_NOT_FOUND`` unless the viewer is still admitted."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.room(code))
            pipe.hexists(self.keys.audience(code), audience_id)
            exists, admitted = await guard(pipe.execute(), self.command_timeout)
        if not exists:
            raise DomainError(ErrorCode.ROOM_NOT_FOUND)
        if not admitted:
            raise DomainError(ErrorCode.MEMBER_NOT_FOUND)

    async def audience_connect(
        self, code: str, audience_id: str, since: int | None = None, *, online: int | None = 1
    ) -> tuple[Snapshot | Resumed, int]:
        """A viewer's socket, and its first frames: the viewer's ``room:state`` or, with ``since``, the
        missed events (unfiltered: the transport applies the viewer rules). ``online``: the viewer
        sockets of the room this instance holds now, this one included (its field in the room's
        ONLINE hash is set to it; None: only read the snapshot). Also returns when the audience's
        count is due (ms; 0 if not counted)."""
        since_arg = "" if since is None else since
        online_arg = "" if online is None else online
        raw = await self._room("audience_connect", code, audience_id, self.instance_id, now_ms(), since_arg, online_arg)
        if _text(raw[0]) == "resumed":
            resumed = Resumed(
                since=since or 0, seq=int(raw[1]), messages=[_bytes(m) for m in raw[4:]], incarnation=_text(raw[2])
            )
            return resumed, int(raw[3])
        snapshot = _snapshot(raw[1], raw[2], raw[3], raw[4])
        return snapshot, int(raw[5])

    async def audience_snapshot(self, code: str, audience_id: str) -> Snapshot:
        """A live viewer socket's ``room:state`` again (it may have missed events); not counted again."""
        snapshot, _ = await self.audience_connect(code, audience_id, online=None)
        assert isinstance(snapshot, Snapshot)
        return snapshot

    async def audience_snapshots(self, code: str, audience_ids: Sequence[str]) -> AudienceView:
        """Read-only: the viewer ``room:state`` of many viewers of the room in one script (a pub/sub
        reconnect resyncs every local viewer of the room: one read per batch, not one each).
        A viewer missing from the answer is no longer admitted (kicked)."""
        raw = await self._room("audience_resync", code, json.dumps(list(audience_ids)))
        base = _snapshot(raw[0], raw[1], raw[2])
        viewers: dict[str, tuple[str, str | None]] = {}
        votes = list(raw[4]) + [None] * (len(audience_ids) - len(raw[4]))
        for audience_id, record, vote in zip(audience_ids, raw[3], votes, strict=False):
            if record:
                viewers[audience_id] = (json.loads(record)["displayName"], _text(vote) if vote else None)
        return AudienceView(base, viewers)

    async def audience_disconnect(self, code: str, online: int = 0) -> int:
        """A viewer socket of this instance closed (``online``: the room's viewer sockets it still
        holds); returns when the audience's count is due (ms, 0: room gone)."""
        return int(await self._room("audience_disconnect", code, self.instance_id, now_ms(), online))

    async def audience_count(self, code: str, online: int | None = None) -> tuple[int, int]:
        """Count the audience over live instances (``online``: this instance's viewer sockets of the
        room, written first); publish ``audience:count`` to the host if it changed and the last is
        a second old. Returns (the count, when to run again in ms or 0)."""
        live = await self._live_instances()
        online_arg = "" if online is None else online
        count, due = await self._room("audience_count", code, live, now_ms(), self.instance_id, online_arg)
        return int(count), int(due)

    async def lock_audience(self, code: str, actor_id: str | None, locked: bool) -> tuple[bool, int]:
        """Lock or unlock the room's audience (host or administrator); (locked now, seq after it)."""
        flag = "1" if locked else "0"
        result, seq = await self._room("audience_lock", code, actor_id or "", flag, self.ttl_ms, now_ms())
        return bool(int(result)), int(seq)

    # -- the game channel (actor None = administrator) ----------------------

    async def send_game_message(self, code: str, sender_id: str, to: str | list[str], kind: str, data_json: str) -> int:
        """Relay ``game:message`` to ``to`` ("host", "all", "others" or member ids); ``data_json`` verbatim."""
        raw = await self._room("game_send", code, sender_id, json.dumps(to), kind, data_json, self.ttl_ms, now_ms())
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
        raw = await self._room(
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
        return int(await self._room("state_delete", code, actor_id or "", key, version, self.ttl_ms, now_ms()))

    async def get_state(self, code: str) -> dict[str, dict[str, Any]]:
        """Every entry of a room, as an administrator sees it: key -> {value, version, visibleTo, writableBy, size}."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.state(code))
            pipe.hgetall(self.keys.values(code))
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

    # -- audience polls (actor None = administrator) ---------------------------

    async def open_poll(
        self,
        code: str,
        actor_id: str | None,
        poll_id: str,
        choices: Sequence[str],
        *,
        prompt: str = "",
        public: bool = False,
    ) -> int:
        """Open a poll (host; one open poll per room, else ``POLL_ALREADY_OPEN``); seq of ``poll:opened``.

        The previous poll's votes and counts are cleared. ``choices`` are unique (the schema
        says so); a room without an audience answers ``AUDIENCE_DISABLED``.
        """
        choices_json = json.dumps(list(choices), separators=(",", ":"), ensure_ascii=False)
        args = (actor_id or "", poll_id, choices_json, prompt, "1" if public else "0", self.ttl_ms, now_ms())
        return int(await self._room("poll_open", code, *args))

    async def vote(self, code: str, audience_id: str, poll_id: str, choice: str) -> PollVote:
        """A viewer's vote (or changed vote) in the open poll: O(1) Redis work whatever the audience.

        ``NOT_ALLOWED`` for a member, ``POLL_NOT_OPEN`` for another poll, ``INVALID_MESSAGE`` for
        a choice the poll does not offer; nothing changes then.
        """
        try:
            seq, due = await self._room("poll_vote", code, audience_id, poll_id, choice, POLL_TALLY_MS,
                                        self.ttl_ms, now_ms())  # fmt: skip
        except DomainError as exc:
            if exc.code is ErrorCode.INVALID_MESSAGE:
                raise DomainError(exc.code, "data/choice: not one of the poll's choices") from None
            raise
        return PollVote(int(seq), int(due) or None)

    async def tally_poll(self, code: str) -> int | None:
        """Publish ``poll:tally`` if votes are waiting and the last tally is POLL_TALLY_MS old.

        Returns when to try again (ms) if votes wait but it is too early, else None (nothing
        to do: published, no open poll, or the room is gone).
        """
        _, due = await self._room("poll_tally", code, POLL_TALLY_MS, self.ttl_ms, now_ms())
        return int(due) or None

    async def close_poll(self, code: str, actor_id: str | None, poll_id: str) -> int:
        """Close the open poll (host) with the exact final tally; seq of ``poll:closed``."""
        return int(await self._room("poll_close", code, actor_id or "", poll_id, self.ttl_ms, now_ms()))

    async def get_poll(self, code: str) -> dict[str, Any] | None:
        """The room's current or last poll as an administrator sees it, or None.

        ``{pollId, choices, prompt, publicTallies, open, counts, votes}`` (counts exact as
        of the read: one pipelined read of three keys, no script: it writes nothing).
        """
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.poll(code))
            pipe.hgetall(self.keys.poll_counts(code))
            pipe.hlen(self.keys.poll_votes(code))
            raw, raw_counts, votes = await guard(pipe.execute(), self.command_timeout)
        poll = {_text(k): _text(v) for k, v in raw.items()}
        if "id" not in poll:
            return None
        choices: list[str] = json.loads(poll.get("choices") or "[]")
        counts = {_text(k): int(v) for k, v in raw_counts.items()}
        return {
            "pollId": poll["id"],
            "choices": choices,
            "prompt": poll.get("prompt", ""),
            "publicTallies": poll.get("public") == "1",
            "open": poll.get("open") == "1",
            "counts": {choice: counts.get(choice, 0) for choice in choices},
            "votes": int(votes),
        }

    # -- host grace (hostMigration "disconnect") ----------------------------

    async def migrate_absent_hosts(self, grace_ms: int, limit: int = 100) -> list[str]:
        """Hand the host role over in rooms whose host has had no socket for ``grace_ms``.

        Run by every instance (like the expiry sweep): the timer lives in Redis,
        so it survives the process that held the host's socket (whose members the
        reaper marks disconnected). Each room is one script that re-checks, so
        concurrent sweeps change a room once; the entry is then re-armed with the host's
        real absence or dropped, only if it still has the score read here (a host who
        left again meanwhile keeps their entry). Returns the codes this caller changed.
        """
        now = now_ms()
        due: Any = await guard(
            self.client.zrangebyscore(self.keys.hostless, "-inf", now - grace_ms, start=0, num=limit, withscores=True),
            self.command_timeout,
        )
        if not due:
            return []
        live = await self._live_instances()
        changed = []
        for raw, score in due:
            member = _text(raw)
            code, incarnation = keys.parse_scheduled(member)
            value, hints = await self._room_raw("host_grace", code, incarnation, grace_ms, self.ttl_ms, now, live)
            if int(value):
                changed.append(code)
            pending = hints.pop("hostless", None)
            hints.pop("inc", None)
            if pending is None:
                await guard(self._settle(self.keys.hostless, member, "eq", score), self.command_timeout)
            elif int(pending) != int(score):
                await guard(self._settle(self.keys.hostless, member, "eq", score, pending), self.command_timeout)
            if hints:
                await self._apply(code, hints)
        return changed

    async def close_if_idle(self, code: str, idle_since_ms: int) -> bool:
        """Admin-close ``code`` if nobody is connected and it has not changed since ``idle_since_ms``.

        For ``roomctl rooms close --idle-for``. The check and the close are one script
        (every join, leave, connect, disconnect and host action rewrites ``updatedAt``), so
        a room that comes back to life concurrently is either closed before or left alone.
        A room that is gone, or not idle: returns False.
        """
        try:
            seq = await self._room("close", code, "", ClosedReason.ADMIN_CLOSED.value, int(idle_since_ms))
        except DomainError as exc:
            if exc.code is ErrorCode.ROOM_NOT_FOUND:  # expired meanwhile
                return False
            raise
        return int(seq) > 0

    async def extend(self, code: str) -> int:
        """Re-arm the room's TTL (its own ``ttlMs`` if the record has one, else the configured one).

        An administrator's "keep this room"; no event, ``updatedAt`` unchanged. Returns the
        new ``expiresAt`` (ms); ``ROOM_NOT_FOUND`` if the room is gone.
        """
        expires, incarnation = await self._room("extend", code, self.ttl_ms, now_ms())
        member = keys.scheduled(code, _text(incarnation))  # XX: a room closed meanwhile stays unscheduled
        await guard(self.client.zadd(self.keys.expiry, {member: int(expires)}, xx=True), self.command_timeout)
        return int(expires)

    # -- expiry -----------------------------------------------------------

    async def expire_due_rooms(self, limit: int = SWEEP_BATCH, budget: int = SWEEP_BUDGET) -> list[str]:
        """Tell the members of rooms Redis has expired; returns the codes this caller closed.

        Each due ``rooms:expiry`` entry is re-checked by one script on its room: a live room
        has its entry re-armed to its real deadline, an expired one is announced (once,
        whichever instances sweep) and leaves the indexes, a stale entry is dropped. Every
        re-arm is made only if the entry still has the score read here. Batches of ``limit``
        entries, handled concurrently, until none is due or ``budget`` entries were handled:
        every live room is re-checked once per TTL, so the sweep must keep up with
        rooms / TTL re-checks a second (1,000,000 rooms with a 2 h TTL: about 140/s).
        """
        closed: list[str] = []
        handled = 0
        while handled < budget:
            now = now_ms()
            due: Any = await guard(
                self.client.zrangebyscore(self.keys.expiry, "-inf", now, start=0, num=limit, withscores=True),
                self.command_timeout,
            )
            done = await asyncio.gather(*(self._expire_entry(_text(raw), score, now) for raw, score in due))
            closed += [code for code in done if code is not None]
            handled += len(due)
            if len(due) < limit:
                break
        return closed

    async def _expire_entry(self, member: str, score: float, now: int) -> str | None:
        """Re-check one due ``rooms:expiry`` entry; the room's code if this call announced its expiry."""
        code, incarnation = keys.parse_scheduled(member)
        (status, number), hints = await self._room_raw("expire", code, incarnation, now)
        status, number = _text(status), int(number)
        if hints:
            await self._apply(code, hints)
        settle: list[Awaitable[Any]]
        if status == "alive":  # re-armed unless closed (and unscheduled) meanwhile
            settle = [self._settle(self.keys.expiry, member, "eq", score, int(number))]
        elif status == "expired":
            settle = [
                self.client.zrem(self.keys.expiry, member),
                self.client.zrem(self.keys.hostless, member),
                self._settle(self.keys.index, code, "eq", number),
            ]
        else:  # gone: nothing of this incarnation is left
            settle = [self.client.zrem(self.keys.expiry, member)]
        await guard(asyncio.gather(*settle), self.command_timeout)
        return code if status == "expired" else None

    # -- reads ------------------------------------------------------------

    async def get_room(self, code: str) -> dict[str, Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.room(code))
            pipe.hlen(self.keys.users(code))
            raw, count = await guard(pipe.execute(), self.command_timeout)
        if raw is None:
            raise DomainError(ErrorCode.ROOM_NOT_FOUND)
        return public_room(json.loads(raw), int(count))

    async def get_members(self, code: str) -> list[dict[str, Any]]:
        """Members as stored (including internals), oldest first. Empty if the room is gone."""
        raw = await guard(self.client.hgetall(self.keys.users(code)), self.command_timeout)
        users = [json.loads(r) for r in raw.values()]
        return sorted(users, key=lambda u: u.get("joinSeq", 0))

    async def get_user(self, code: str, user_id: str) -> dict[str, Any] | None:
        """The member record of ``user_id`` in room ``code`` (a member is only found through its room)."""
        raw = await guard(self.client.hget(self.keys.users(code), user_id), self.command_timeout)
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
        "audience": bool(room.get("audience")),
        "audienceLocked": bool(room.get("audienceLocked")),
        "audienceCount": int(room.get("audienceCount") or 0),  # as last published: at most a second old
    }


def _snapshot(
    raw: bytes | str, state_raw: bytes | str, poll_raw: bytes | str | None = None, you_raw: bytes | str | None = None
) -> Snapshot:
    """A snapshot script's reply; ``poll_raw`` comes from rooms with an audience only, ``you_raw`` for viewers."""
    snapshot = json.loads(raw)
    room = snapshot["room"]
    extra: dict[str, Any] = {}
    if poll_raw is not None:
        extra["poll"] = json.loads(poll_raw)
    if you_raw is not None:
        extra["you"] = json.loads(you_raw)
    return Snapshot(
        room=public_room(room, len(snapshot["users"])),
        users=snapshot["users"],
        seq=int(room["seq"]),
        incarnation=str(room.get("incarnation") or ""),
        state=json.loads(state_raw),
        extra=extra,
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
    except (ClusterError, TryAgainError, SlotNotCoveredError) as exc:
        # A Cluster shard without a master (CLUSTERDOWN/MASTERDOWN mid-failover, redis-py's
        # "TTL exhausted" after its redirects), a slot in migration (TRYAGAIN) or uncovered:
        # Redis is away for this room's shard, like a lost connection (503, not 500).
        raise StoreUnavailable(f"Redis Cluster: {exc}") from exc
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
