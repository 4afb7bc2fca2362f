"""Fan-out: one Redis pub/sub connection per process, one SUBSCRIBE per room in use.

Domain scripts PUBLISH every event on the room's channel (``keys.channel``). An instance
subscribes to a room while it holds at least one socket of it (reference
counted), so adding instances adds capacity instead of multiplying traffic.

The subscriber connection has no read timeout (it is idle by design) but TCP
keepalive, and a self-check: every ``check_interval`` seconds the instance
publishes on its own channel and must hear itself back, else the connection
is considered deaf and is rebuilt. After any reconnect every room is
re-subscribed and ``on_resubscribed`` is called, because pub/sub is
at-most-once and events published meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import RedisError

from roomd.domain.keys import bus_self_channel, channel, room_of_channel

log = logging.getLogger("roomd.bus")

Deliver = Callable[[str, bytes], None]
Resubscribed = Callable[[list[str]], Awaitable[None]]


class BusMessage:
    """One bus message ``<meta JSON>\\n<frame JSON>``, decoded once per process.

    Written by the domain scripts (``publish`` in ``lua/prelude.lua``) and kept in
    the room's history for replays. ``payload`` is the frame members receive, with
    its top-level ``seq``, encoded once in Lua. Meta fields:

    * ``seq`` - the room's sequence number (absent only on ``room:closed {EXPIRED}``);
    * ``inc`` - the room's incarnation: a socket of an older room that had the same
      code drops the events of this one;
    * ``to`` - the only user ids that may receive it (absent: every member);
    * ``skip`` - a user id that does not receive it;
    * ``direct`` - ``{userId, event, data}``: that user receives this frame instead;
    * ``close`` - ``{code, userId?, exceptSocket?}``: sockets to close after the frame;
    * ``resync`` - user ids whose view of the state changed wholesale (a new host):
      they re-read a snapshot.

    ``plain`` is true when only ``seq``/``to``/``skip`` are set, the fast path of fan-out.
    """

    __slots__ = ("close", "direct", "inc", "payload", "plain", "resync", "seq", "skip", "to")

    def __init__(self, raw: bytes) -> None:
        meta_raw, _, self.payload = raw.partition(b"\n")
        meta = json.loads(meta_raw)
        self.seq: int | None = meta.get("seq")
        self.inc: str | None = meta.get("inc")
        to = meta.get("to")
        self.to: frozenset[str] | None = None if to is None else frozenset(to)
        self.skip: str | None = meta.get("skip")
        self.direct: dict[str, Any] | None = meta.get("direct")
        self.close: dict[str, Any] | None = meta.get("close")
        resync = meta.get("resync")
        self.resync: frozenset[str] | None = None if resync is None else frozenset(resync)
        self.plain = self.direct is None and self.close is None and self.resync is None

    def for_user(self, user_id: str) -> bool:
        """Whether ``user_id`` may receive this message at all (``to``)."""
        return self.to is None or user_id in self.to


class RoomBus:
    """Per-room subscriptions over a single self-healing pub/sub connection."""

    def __init__(
        self,
        pool: ConnectionPool,  # RedisTarget.pubsub_pool(): each connection goes to the current master
        publisher: aioredis.Redis,
        deliver: Deliver,
        *,
        on_resubscribed: Resubscribed | None = None,  # may also be assigned later
        check_interval: float = 5.0,
        subscribe_timeout: float = 5.0,
        linger: float = 10.0,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._deliver = deliver
        self.on_resubscribed = on_resubscribed
        self._check_interval = check_interval
        self._subscribe_timeout = subscribe_timeout
        self._refs: dict[str, int] = {}  # room -> local holders (0 while lingering)
        self._confirmed: set[str] = set()  # rooms whose SUBSCRIBE Redis has confirmed
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        self._linger = linger
        self._conn: Connection | None = None
        self._connected = asyncio.Event()
        self._self_channel = bus_self_channel(secrets.token_hex(8))
        self._last_heard = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._closing = False
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._connected.is_set()

    async def start(self, wait: float | None = None) -> None:
        """Start the reader (and self-check); optionally wait until first connected."""
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._self_check())]
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), wait)

    async def close(self) -> None:
        self._closing = True
        for timer in self._lingering.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None:
            await self._conn.disconnect()
        await self._pool.aclose()  # a Sentinel pool also closes its connections to the Sentinels

    async def acquire(self, code: str) -> None:
        """Hold a subscription to ``code``; returns once Redis has confirmed it."""
        timer = self._lingering.pop(code, None)
        if timer is not None:
            timer.cancel()
        self._refs[code] = self._refs.get(code, 0) + 1
        if code in self._confirmed:
            return
        name = channel(code)
        waiter = asyncio.get_running_loop().create_future()
        first = name not in self._waiters
        self._waiters.setdefault(name, []).append(waiter)
        if first:
            await self._send("SUBSCRIBE", name)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._subscribe_timeout)
        except TimeoutError:
            self.release(code)
            raise

    def release(self, code: str) -> None:
        """Drop a hold; the last one keeps the subscription for LINGER seconds.

        Players reconnect all the time (page reloads, flaky mobile networks):
        lingering spares a SUBSCRIBE round trip, and Redis a subscribe/unsubscribe
        pair, for each of those reconnections.
        """
        count = self._refs.get(code, 0) - 1
        if count > 0:
            self._refs[code] = count
            return
        self._refs[code] = 0
        if code not in self._lingering:
            self._lingering[code] = asyncio.get_running_loop().call_later(self._linger, self._unsubscribe, code)

    def _unsubscribe(self, code: str) -> None:
        self._lingering.pop(code, None)
        if self._refs.get(code) == 0:
            del self._refs[code]
            self._confirmed.discard(code)
            self._spawn(self._send("UNSUBSCRIBE", channel(code)))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send(self, *args: str) -> None:
        conn = self._conn
        if conn is None or not self._connected.is_set():
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
            try:
                await conn.connect()
                rooms = sorted(self._refs)
                await conn.send_command("SUBSCRIBE", self._self_channel, *(channel(c) for c in rooms))
                self._conn = conn
                self._connected.set()
                self._last_heard = asyncio.get_running_loop().time()
                if not first:
                    self.reconnects += 1
                    log.warning("pub/sub reconnected; %d room(s) re-subscribed", len(rooms))
                    if self.on_resubscribed is not None:
                        self._spawn(self._resync_after(rooms))
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
                self._connected.clear()
                self._conn = None
                self._confirmed.clear()  # every room is re-subscribed (and re-confirmed) on reconnect
                with contextlib.suppress(Exception):
                    await conn.disconnect()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _resync_after(self, rooms: list[str]) -> None:
        assert self.on_resubscribed is not None
        try:
            await self.on_resubscribed(rooms)
        except Exception:
            log.exception("resynchronising rooms after a pub/sub reconnect failed")

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
            if code is not None and code in self._refs:
                try:
                    self._deliver(code, response[2])
                except Exception:
                    log.exception("delivering an event of room %s failed", code)
        elif kind == b"subscribe":
            code = room_of_channel(name)
            if code is not None and code in self._refs:
                self._confirmed.add(code)
            for waiter in self._waiters.pop(name, []):
                if not waiter.done():
                    waiter.set_result(None)

    async def _self_check(self) -> None:
        """Publish to ourselves; if we stop hearing it, the connection is deaf: rebuild it."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._check_interval)
            if not self.connected:
                continue
            with contextlib.suppress(RedisError, OSError):
                await self._publisher.publish(self._self_channel, b"ping")
            if loop.time() - self._last_heard > 3 * self._check_interval and self._conn is not None:
                log.warning(
                    "pub/sub self-check failed: no echo for %.1fs; reconnecting", loop.time() - self._last_heard
                )
                await self._conn.disconnect()
