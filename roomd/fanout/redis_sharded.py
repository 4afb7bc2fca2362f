"""The broker for Redis Cluster: sharded pub/sub, SSUBSCRIBE on the master serving each room.

On a Cluster the scripts SPUBLISH on the room's channel, which Redis delivers only
within the shard serving the channel's hash slot (with ``{CODE}`` hash tags, the
room's own shard). So this broker keeps one pub/sub connection per master it needs
(a :class:`_Link`), and subscribes each room on the link of the master serving its
slot, found through the cluster client's slot map
(:meth:`roomd.domain.redis_target.ClusterTarget.shard_node`). A process holding rooms
on every shard has one connection per master, no more.

A room's subscription can be lost in three ways; each is noticed, the room is
subscribed again where its slot is served *now*, and once that is confirmed the
rooms lost (only those) are named to ``on_resubscribed``:

* **failover** - the master dies: its link's connection breaks. The link re-reads
  the topology (backing off, at most ``MAX_RETRY_DELAY`` apart) until the slot map
  names another master for its rooms (the promoted replica), then hands them to that
  master's link; the other links, and the rooms on them, are not touched;
* **slot migration** - the master stays, but a slot moves away (resharding, a manual
  failover): Redis pushes ``sunsubscribe`` for the channels of that slot, which this
  broker did not ask for: the topology is re-read and the room moves;
* **stale map** - SSUBSCRIBE sent to a master that no longer serves the slot answers
  ``-MOVED <slot> <host>:<port>``: the room goes to that address.

Each link has a watchdog: a PING every ``check_interval`` (allowed on a subscribed
connection; the answer is ``pong``); no answer of any kind within three intervals
means the connection is deaf, and it is rebuilt (and its rooms resynchronised).

Why not redis-py's ``RedisCluster.pubsub()`` (8.1 has ``ssubscribe``): it reads the
nodes' connections in turn with a polling timeout (latency on every message), and
re-subscribes moved channels silently, so the caller cannot know which rooms lost
events and must be resynchronised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import MovedError, RedisError, ResponseError

from roomd.domain.keys import bus_self_channel, channel, room_of_channel
from roomd.domain.redis_target import Address, ClusterTarget
from roomd.fanout.broker import Broker, Deliver, Resubscribed
from roomd.fanout.redis_pubsub import quiet_push_handler

log = logging.getLogger("roomd.bus")

MAX_RETRY_DELAY = 1.0  # seconds between attempts to reach a shard, at most (a failover takes seconds)


class _Link:
    """One pub/sub connection to one master, for the rooms whose slot it serves."""

    __slots__ = ("conn", "last_heard", "node", "ready", "rooms", "task", "unsubscribing")

    def __init__(self, node: Address) -> None:
        self.node = node
        self.rooms: set[str] = set()
        self.conn: Connection | None = None
        self.ready = False  # connected; SSUBSCRIBE may be sent
        self.task: asyncio.Task[None] | None = None
        self.last_heard = 0.0
        self.unsubscribing: dict[str, int] = {}  # SUNSUBSCRIBE sent, confirmation pending


class ClusterBroker(Broker):
    kind = "cluster"

    def __init__(
        self,
        target: ClusterTarget,
        cluster: RedisCluster,  # the command client: its slot map is shared (and refreshed) here
        deliver: Deliver,
        *,
        on_resubscribed: Resubscribed | None = None,
        connect_timeout: float = 10.0,
        check_interval: float = 5.0,
        subscribe_timeout: float = 5.0,
        linger: float = 10.0,
    ) -> None:
        super().__init__(deliver, on_resubscribed=on_resubscribed, subscribe_timeout=subscribe_timeout, linger=linger)
        self._target = target
        self._cluster = cluster
        self._connect_timeout = connect_timeout
        self._check_interval = check_interval
        self._links: dict[Address, _Link] = {}
        self._room_link: dict[str, _Link] = {}
        self._topology_known = False
        self._refresh_lock = asyncio.Lock()
        self._refreshed_at = -math.inf
        self._probe = bus_self_channel(secrets.token_hex(8))  # any channel name: for topology reads
        self._tasks: list[asyncio.Task[None]] = []

    # -- health ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The slot map is known and every link that holds rooms is connected."""
        return self._topology_known and all(link.ready for link in self._links.values() if link.rooms)

    def _connections(self) -> int:
        return sum(1 for link in self._links.values() if link.ready)

    def nodes(self) -> dict[Address, list[str]]:
        """Which master each held room is subscribed on (tests, diagnostics)."""
        return {node: sorted(link.rooms) for node, link in self._links.items() if link.rooms}

    # -- life ----------------------------------------------------------------------------------

    async def start(self, wait: float | None = None) -> None:
        self._tasks = [asyncio.create_task(self._learn_topology()), asyncio.create_task(self._watchdog())]
        if wait:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while not self.connected and loop.time() < deadline:
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        await super().close()
        for task in self._tasks:
            task.cancel()
        links = list(self._links.values())
        self._links.clear()
        for link in links:
            if link.task is not None:
                link.task.cancel()
        for task in [*self._tasks, *(link.task for link in links if link.task is not None)]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _learn_topology(self) -> None:
        """Read the slot map once at start (retrying while no node answers): readiness."""
        delay = 0.05
        while not self._closing:
            try:
                await self._target.shard_node(self._cluster, self._probe)
                self._topology_known = True
                return
            except (RedisError, OSError) as exc:
                log.warning("Redis Cluster topology not readable yet (%s); retrying in %.2fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    # -- subscriptions -------------------------------------------------------------------------

    def _request(self, code: str) -> None:
        link = self._room_link.get(code)
        if link is not None:
            self._spawn(self._send(link, "SSUBSCRIBE", channel(code)))
        else:
            self._spawn(self._place([code]))

    def _drop(self, code: str) -> None:
        link = self._room_link.pop(code, None)
        if link is None:
            return
        link.rooms.discard(code)
        if not link.rooms:
            self._retire(link)  # closing the connection unsubscribes it
        elif link.ready:
            link.unsubscribing[code] = link.unsubscribing.get(code, 0) + 1
            self._spawn(self._send(link, "SUNSUBSCRIBE", channel(code)))

    async def _place(self, codes: list[str], *, refresh: bool = False) -> None:
        """Subscribe ``codes`` on the master serving each one's slot (re-reading the map first if
        ``refresh``). If the map cannot be read, retry with back-off while the rooms are held."""
        delay = 0.05
        while not self._closing:
            codes = [code for code in codes if code in self._refs]
            if not codes:
                return
            try:
                if refresh:
                    await self._refresh()
                for code in codes:
                    self._assign(code, await self._target.shard_node(self._cluster, channel(code)))
                return
            except (RedisError, OSError) as exc:
                log.warning("cannot locate the shard of %d room(s) (%s); retrying in %.2fs", len(codes), exc, delay)
            refresh = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _refresh(self) -> None:
        """Re-read the slot map (one read serves every caller that waited for it)."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        async with self._refresh_lock:
            if self._refreshed_at >= asked:
                return
            await self._target.shard_node(self._cluster, self._probe, refresh=True)
            self._refreshed_at = loop.time()
            self._topology_known = True

    def _assign(self, code: str, node: Address) -> None:
        """Subscribe ``code`` on ``node``'s link (created on first use), leaving its old link."""
        if code not in self._refs:
            return
        old = self._room_link.get(code)
        if old is not None and old.node != node:
            old.rooms.discard(code)  # that node dropped it already (moved, MOVED, or dead)
            if not old.rooms:
                self._retire(old)
        link = self._links.get(node)
        if link is None:
            link = self._links[node] = _Link(node)
            link.task = asyncio.create_task(self._run(link))
        link.rooms.add(code)
        self._room_link[code] = link
        if link.ready:
            self._spawn(self._send(link, "SSUBSCRIBE", channel(code)))

    def _retire(self, link: _Link) -> None:
        if self._links.get(link.node) is link:
            del self._links[link.node]
        if link.task is not None:
            link.task.cancel()

    async def _send(self, link: _Link, *args: str) -> None:
        conn = link.conn
        if conn is None or not link.ready:
            return  # the link subscribes all its rooms when it (re)connects
        try:
            await conn.send_command(*args)
        except (RedisError, OSError) as exc:
            log.warning("pub/sub send to %s:%d failed (%s); reconnecting", *link.node, exc)
            await conn.disconnect()

    # -- one link --------------------------------------------------------------------------------

    async def _run(self, link: _Link) -> None:
        """Connect, subscribe the link's rooms, read; on loss, relocate the rooms and retry."""
        delay = 0.05
        first = True
        try:
            while not self._closing and link.rooms:
                conn = self._target.shard_pubsub_connection(link.node, connect_timeout=self._connect_timeout)
                quiet_push_handler(conn)
                try:
                    await conn.connect()
                    link.conn = conn
                    link.ready = True  # before sending: a room assigned meanwhile sends its own SSUBSCRIBE
                    link.last_heard = asyncio.get_running_loop().time()
                    rooms = sorted(link.rooms)
                    if rooms:  # one SSUBSCRIBE per room: channels of different slots cannot share one
                        await conn.send_packed_command(conn.pack_commands([("SSUBSCRIBE", channel(c)) for c in rooms]))
                    if not first:
                        log.warning("shard %s:%d reconnected; re-subscribing %d room(s)", *link.node, len(rooms))
                    first = False
                    delay = 0.05
                    await self._read(link, conn)
                except (RedisError, OSError) as exc:
                    if link.ready and link.rooms:  # a live connection lost (not a failed attempt)
                        self.reconnects += 1
                    if not self._closing:
                        log.warning("shard %s:%d pub/sub lost (%s)", *link.node, exc)
                finally:
                    link.ready = False
                    link.conn = None
                    link.unsubscribing.clear()
                    self._unconfirm(link.rooms)
                    with contextlib.suppress(Exception):
                        await conn.disconnect()
                if not link.rooms:
                    break
                if self._closing:  # (close() may have run during the awaits above)
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                await self._relocate(link)  # a failover: the slots may be served elsewhere now
        finally:
            if self._links.get(link.node) is link and not link.rooms:
                del self._links[link.node]

    async def _read(self, link: _Link, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                response = await conn.read_response(timeout=math.inf, push_request=True)
            except MovedError as moved:
                link.last_heard = loop.time()
                self._moved(link, moved)
                continue
            except ResponseError as exc:  # ASK, TRYAGAIN, CLUSTERDOWN while the cluster changes
                link.last_heard = loop.time()
                log.info("shard %s:%d refused a subscription (%s); locating again", *link.node, exc)
                pending = [code for code in link.rooms if code not in self._confirmed]
                self._spawn(self._place(pending, refresh=True))
                continue
            link.last_heard = loop.time()
            self._handle(link, response)

    def _handle(self, link: _Link, response: object) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return  # pong, or an answer without a channel
        kind = response[0]
        name = response[1].decode() if isinstance(response[1], bytes) else str(response[1])
        code = room_of_channel(name)
        if code is None:
            return
        if kind == b"smessage":
            self._received(code, response[2])
        elif kind == b"ssubscribe":
            if self._room_link.get(code) is link:
                self._confirm(code)
        elif kind == b"sunsubscribe":
            pending = link.unsubscribing.get(code, 0)
            if pending:  # the answer to our own SUNSUBSCRIBE
                if pending == 1:
                    del link.unsubscribing[code]
                else:
                    link.unsubscribing[code] = pending - 1
            elif code in link.rooms:  # not asked for: the slot moved away from this master
                log.info("room %s: its slot left %s:%d; subscribing where it is served now", code, *link.node)
                self._unconfirm([code])
                self._spawn(self._place([code], refresh=True))

    def _moved(self, link: _Link, moved: MovedError) -> None:
        """``-MOVED slot host:port`` to an SSUBSCRIBE: subscribe that slot's rooms there."""
        node = (moved.host, int(moved.port))
        for code in [c for c in link.rooms if c not in self._confirmed]:
            if self._cluster.keyslot(channel(code)) == moved.slot_id:
                self._assign(code, node)
        self._spawn(self._refresh_quietly())  # the slot map is stale: other rooms would meet MOVED too

    async def _refresh_quietly(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._refresh()

    async def _relocate(self, link: _Link) -> None:
        """After a lost connection: move each room to the master serving its slot now."""
        try:
            await self._refresh()
            for code in sorted(link.rooms):
                node = await self._target.shard_node(self._cluster, channel(code))
                if node != link.node:
                    self._assign(code, node)
        except (RedisError, OSError) as exc:
            log.info("cannot re-read the cluster topology (%s); retrying %s:%d", exc, *link.node)

    async def _watchdog(self) -> None:
        """PING every link; one silent for three intervals is deaf: rebuild it."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._check_interval)
            now = loop.time()
            for link in list(self._links.values()):
                conn = link.conn
                if not link.ready or conn is None:
                    continue
                if now - link.last_heard > 3 * self._check_interval:
                    log.warning("shard %s:%d pub/sub silent for %.1fs; reconnecting", *link.node, now - link.last_heard)
                    await conn.disconnect()
                else:
                    self._spawn(self._send(link, "PING"))
