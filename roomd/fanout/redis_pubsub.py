"""The broker for one Redis (or a Sentinel-managed master): SUBSCRIBE per room, one connection.

The scripts PUBLISH on the room's channel. One pub/sub connection per process,
one SUBSCRIBE per room in use (pattern subscriptions would cost Redis a pattern
match per publish per process).

The subscriber connection has no read timeout (it is idle by design) but TCP
keepalive, and a self-check: every ``check_interval`` seconds the process
publishes on its own channel (``keys.bus_self_channel``) and must hear itself
back within three intervals, else the connection is deaf (a silently dropped
peer, a proxy) and is rebuilt. Every connection comes from the target's pub/sub
pool, so on Sentinel a reconnect lands on the current master. After a reconnect
every held room is subscribed again and, once Redis confirms it, the rooms whose
earlier subscription was lost are resynchronised (:class:`roomd.fanout.broker.Broker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, Connection, ConnectionPool
from redis.exceptions import RedisError

from roomd.domain.keys import bus_self_channel, channel, room_of_channel
from roomd.fanout.broker import Broker, Deliver, Resubscribed

log = logging.getLogger("roomd.bus")

MAX_RETRY_DELAY = 2.0  # seconds between reconnection attempts, at most


async def _as_is(response: object) -> object:
    return response


def quiet_push_handler(conn: AbstractConnection) -> bool:
    """Stop redis-py formatting every pub/sub message for a debug log; True if it could.

    redis-py 8 hands each message a hiredis connection reads (a push notification to
    hiredis 3) to ``handle_pubsub_push_response``, which builds ``str(response)`` and
    looks up a logger for a ``debug`` call: ~4 µs per message here, every message of
    every room. redis-py's own ``PubSub`` replaces that handler the same way, through
    the connection's parser (``_parser``, a private attribute: checked, and
    tests/unit/test_fanout_redis.py fails if it goes away). Call before ``connect()``.
    """
    setter = getattr(getattr(conn, "_parser", None), "set_pubsub_push_handler", None)
    if setter is None:
        return False
    setter(_as_is)
    return True


class RedisBroker(Broker):
    kind = "redis"

    def __init__(
        self,
        pool: ConnectionPool,  # RedisTarget.pubsub_pool(): each connection goes to the current master
        publisher: aioredis.Redis,  # for the self-check pings
        deliver: Deliver,
        *,
        on_resubscribed: Resubscribed | None = None,
        check_interval: float = 5.0,
        subscribe_timeout: float = 5.0,
        linger: float = 10.0,
    ) -> None:
        super().__init__(deliver, on_resubscribed=on_resubscribed, subscribe_timeout=subscribe_timeout, linger=linger)
        self._pool = pool
        self._publisher = publisher
        self._check_interval = check_interval
        self._conn: Connection | None = None
        self._up = asyncio.Event()
        self._self_channel = bus_self_channel(secrets.token_hex(8))
        self._last_heard = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._up.is_set()

    def _connections(self) -> int:
        return 1 if self.connected else 0

    async def start(self, wait: float | None = None) -> None:
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._self_check())]
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), wait)

    async def close(self) -> None:
        await super().close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None:
            await self._conn.disconnect()
        await self._pool.aclose()  # a Sentinel pool also closes its connections to the Sentinels

    def _request(self, code: str) -> None:
        if self.connected:
            self._spawn(self._send("SUBSCRIBE", channel(code)))

    def _drop(self, code: str) -> None:
        if self.connected:
            self._spawn(self._send("UNSUBSCRIBE", channel(code)))

    async def _send(self, *args: str) -> None:
        conn = self._conn
        if conn is None or not self._up.is_set():
            return  # the reader subscribes every held room when it (re)connects
        try:
            await conn.send_command(*args)
        except (RedisError, OSError) as exc:
            log.warning("pub/sub send failed (%s); reconnecting", exc)
            await conn.disconnect()

    async def _run(self) -> None:
        delay = 0.05
        first = True
        while not self._closing:
            conn = self._pool.make_connection()
            quiet_push_handler(conn)
            try:
                await conn.connect()
                # Up before the SUBSCRIBE is sent: a room subscribed meanwhile sends its own.
                self._conn = conn
                self._up.set()
                self._last_heard = asyncio.get_running_loop().time()
                rooms = sorted(self._refs)
                await conn.send_command("SUBSCRIBE", self._self_channel, *(channel(c) for c in rooms))
                if not first:
                    self.reconnects += 1
                    log.warning("pub/sub reconnected; re-subscribing %d room(s)", len(rooms))
                first = False
                delay = 0.05
                while True:
                    self._handle(await conn.read_response(timeout=math.inf, push_request=True))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if not self._closing:
                    log.warning("pub/sub connection lost (%s); retrying in %.2fs", exc, delay)
            finally:
                self._up.clear()
                self._conn = None
                self._unconfirm(list(self._refs))
                with contextlib.suppress(Exception):
                    await conn.disconnect()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    def _handle(self, response: object) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return
        kind = response[0]
        name = response[1].decode() if isinstance(response[1], bytes) else str(response[1])
        if kind == b"message":
            if name == self._self_channel:
                self._last_heard = asyncio.get_running_loop().time()
                return
            code = room_of_channel(name)
            if code is not None:
                self._received(code, response[2])
        elif kind == b"subscribe":
            code = room_of_channel(name)
            if code is not None:
                self._confirm(code)

    async def _self_check(self) -> None:
        """Publish to ourselves; if we stop hearing it, the connection is deaf: rebuild it."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._check_interval)
            if not self.connected:
                continue
            with contextlib.suppress(RedisError, OSError):
                await self._publisher.publish(self._self_channel, b"ping")
            conn = self._conn
            if loop.time() - self._last_heard > 3 * self._check_interval and conn is not None:
                log.warning(
                    "pub/sub self-check failed: no echo for %.1fs; reconnecting", loop.time() - self._last_heard
                )
                await conn.disconnect()
