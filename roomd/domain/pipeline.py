"""Auto-pipelining for the hot Redis calls: every command issued in one event-loop
iteration goes out in one write on one dedicated connection, and the replies are read
back in order by one reader task.

Why: redis-py's per-call path (``execute_command``: pool checkout and release with their
locks and metrics, the retry wrapper, a timeout context per read) costs ~60-70 µs of CPU
per EVALSHA here (bench/README.md), several times what packing the command and parsing
its reply cost. A room event is one script call, so that machinery was a third of roomd's
CPU per event. Here a call costs a future, its share of one write, and one reply parsed
by hiredis (through redis-py's own connection and parser, public methods only).

What stays as with redis-py's client:

* the connection comes from the client's pool (``get_connection``): AUTH, db, TLS and
  Sentinel master discovery are redis-py's (a Sentinel-managed connection asks the
  Sentinels for the current master on every connect and turns a READONLY reply into a
  lost connection), and ``client.aclose()`` closes it with the pool's other connections;
* error replies are raised as redis-py's ``ResponseError`` subclasses (``NoScriptError``
  for NOSCRIPT), a lost connection as ``ConnectionError``: ``store.guard`` maps them.

What differs, on purpose:

* nothing is retried: a call written to a connection that is lost before its reply
  fails with ``ConnectionError`` (the script may or may not have run; redis-py's retry
  would have run it a second time). Calls not yet written go out on the next connection,
  which the next call opens;
* the per-call timeout is the caller's (``guard``): a caller that gives up leaves its
  reply to be read and dropped. When callers give up while Redis has answered nothing
  for ``stall_timeout``, the connection is declared dead (as a read timeout is in
  redis-py), its calls fail, and the next call reconnects.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is a dependency; redis-py works without it
    _hiredis_pack = None


class CallPipeline:
    """One dedicated connection from ``pool``; see the module docstring.

    ``stall_timeout``: how long Redis may answer nothing while calls wait before the
    connection is dropped (checked when a caller gives up; None: never).
    ``connect_timeout``: bounds a (re)connection, handshake and Sentinel lookup included.
    """

    def __init__(self, pool: ConnectionPool, *, stall_timeout: float | None, connect_timeout: float | None) -> None:
        self.pool = pool
        self.stall_timeout = stall_timeout
        self.connect_timeout = connect_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: AbstractConnection | None = None  # taken from the pool once, never released
        self._ready = False  # _conn is connected and its reader runs
        self._generation = 0  # bumped on every loss: a reader or writer of an older one stands down
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._in_flight: deque[asyncio.Future[Any]] = deque()
        self._last_progress = 0.0  # loop time of the last reply, or of the first call in flight
        self._flush_scheduled = False
        self._connecting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # every task of ours (strong references)
        # The reader and the writes of the current connection; on a loss they are cancelled
        # and the reconnect waits for them: redis-py's connection object is reused, and a
        # stale read or write on it must not touch (or disconnect) the new connection.
        self._io: set[asyncio.Task[Any]] = set()
        self._retiring: set[asyncio.Task[Any]] = set()
        self.connections = 0  # connections made so far (tests, metrics)
        self.batches = 0  # writes made so far: calls / batches is the batching achieved

    # -- calls ----------------------------------------------------------------

    async def execute(self, *args: Any) -> Any:
        """Run one command (``"EVALSHA", sha, numkeys, *keys, *args``); its decoded reply.

        Raises the reply's ``ResponseError``, or ``ConnectionError`` when the connection
        was lost with the call in flight or could not be made.
        """
        future = self.submit(*args)
        try:
            return await future
        except asyncio.CancelledError:
            self._abandoned()
            raise

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        """Queue a command for this iteration's write; the future of its reply."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        future = loop.create_future()
        self._pending.append((args, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._spawn(self._flush())  # its first step runs after everything already ready now
        return future

    async def _flush(self) -> None:
        """Write every call queued since the last flush, in one write."""
        self._flush_scheduled = False
        if not self._pending:
            return
        conn = self._conn
        if not self._ready or conn is None:
            if self._connecting is None:
                self._connecting = self._spawn(self._connect(self._generation))
            return
        batch, self._pending = self._pending, []
        live = [(args, fut) for args, fut in batch if not fut.done()]  # given up before sending: never sent
        if not live:
            return
        packed: list[bytes] = []
        sent: list[asyncio.Future[Any]] = []
        for args, fut in live:
            try:
                packed.append(_pack(conn, args))
            except Exception as exc:  # an argument that cannot be encoded: this call fails, not its batch
                fut.set_exception(exc)
            else:
                sent.append(fut)
        if not sent:
            return
        assert self._loop is not None
        if not self._in_flight:
            self._last_progress = self._loop.time()
        self._in_flight.extend(sent)
        self.batches += 1
        generation = self._generation
        if not conn.is_connected:  # closed under us (the pool's disconnect): send_packed_command would reconnect
            self._lost(generation, RedisConnectionError("connection closed"))
            return
        # Batches go out in submission order: the bytes are handed to the transport
        # (writelines) before send_packed_command's first await (drain, waiting only when
        # the socket's buffer is full), and later batches are appended after them.
        task = asyncio.current_task()
        assert task is not None
        self._io.add(task)
        try:
            await conn.send_packed_command(packed, check_health=False)
        except Exception as exc:
            self._lost(generation, exc)
        finally:
            self._io.discard(task)

    # -- connection -------------------------------------------------------------

    async def _connect(self, generation: int) -> None:
        try:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    if self._conn is None:
                        conn = await self.pool.get_connection()
                        # Our reads wait for replies for as long as calls are in flight (the
                        # reader blocks with no timeout; stalls are detected in _abandoned),
                        # so writes need no per-write wait_for either.
                        conn.socket_timeout = None
                        self._conn = conn
                    else:
                        if self._retiring:  # the last connection's reader and writes, cancelled
                            await asyncio.wait(self._retiring)
                            self._retiring.clear()
                        await self._conn.disconnect(nowait=True)  # no-op if already closed
                        await self._conn.connect()
            except TimeoutError:
                raise RedisTimeoutError("Timeout connecting to Redis") from None
        except Exception as exc:
            self._connecting = None
            if self._conn is not None:
                await self._conn.disconnect(nowait=True)
            pending, self._pending = self._pending, []
            for _, fut in pending:
                if not fut.done():
                    fut.set_exception(_as_connection_error(exc))
            return
        self._connecting = None
        if generation != self._generation:  # pragma: no cover - a loss cannot happen while not ready
            return
        self.connections += 1
        self._ready = True
        assert self._conn is not None
        self._io.add(self._spawn(self._read(self._conn, generation)))
        await self._flush()

    async def _read(self, conn: AbstractConnection, generation: int) -> None:
        """Resolve the calls in flight, in order, from this connection's replies."""
        in_flight = self._in_flight
        assert self._loop is not None
        loop = self._loop
        while True:
            try:
                # timeout=math.inf: no read timeout (redis-py's documented opt-in), so an idle
                # connection is kept; disconnect_on_error=False: losses are handled in _lost.
                reply: Any = await conn.read_response(timeout=math.inf, disconnect_on_error=False)
            except ResponseError as exc:  # an error reply: the connection is fine
                reply = exc
            except asyncio.CancelledError:
                self._lost(generation, RedisConnectionError("pipeline closed"))
                raise
            except Exception as exc:
                self._lost(generation, exc)
                return
            if generation != self._generation:
                return
            if not in_flight:  # a reply nobody asked for: the stream is out of step
                self._lost(generation, RedisConnectionError("unexpected reply from Redis"))
                return
            self._last_progress = loop.time()
            fut = in_flight.popleft()
            if fut.done():  # its caller gave up
                continue
            if isinstance(reply, ResponseError):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)

    def _lost(self, generation: int, exc: BaseException) -> None:
        """The connection of ``generation`` is gone: fail its calls in flight; the next call reconnects."""
        if generation != self._generation:
            return
        self._generation += 1
        self._ready = False
        error = _as_connection_error(exc)
        in_flight, self._in_flight = self._in_flight, deque()
        for fut in in_flight:
            if not fut.done():
                fut.set_exception(error)
        current = asyncio.current_task()
        for task in self._io:
            if task is not current:
                task.cancel()
        self._retiring |= self._io
        self._io = set()
        conn = self._conn
        if conn is not None and conn.is_connected:
            self._retiring.add(self._spawn(conn.disconnect(nowait=True)))
        if self._pending and not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._spawn(self._flush())

    def _abandoned(self) -> None:
        """A caller gave up (its timeout): if Redis has answered nothing for a while, drop the connection."""
        if self.stall_timeout is None or not self._in_flight or self._loop is None:
            return
        if self._loop.time() - self._last_progress >= self.stall_timeout:
            self._lost(self._generation, RedisTimeoutError("Redis did not answer in time"))

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use, or use from another event loop (tests): start over on this one."""
        self._loop = loop
        self._generation += 1
        self._conn = None  # a connection of another loop is unusable here (the pool closes it)
        self._ready = False
        self._connecting = None
        self._pending = []
        self._in_flight = deque()
        self._flush_scheduled = False
        self._tasks = set()
        self._io = set()
        self._retiring = set()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Drop the connection and stop its reader (``client.aclose()`` closing the pool does too)."""
        self._lost(self._generation, RedisConnectionError("pipeline closed"))
        if self._conn is not None:
            await self._conn.disconnect()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _pack(conn: AbstractConnection, args: tuple[Any, ...]) -> bytes:
    """One command in RESP: hiredis's packer (C; redis-py's asyncio connection packs in
    Python, ~60 µs for a room script's 15 arguments), the connection's own without hiredis."""
    if _hiredis_pack is not None:
        try:
            return bytes(_hiredis_pack(args))
        except TypeError as exc:  # redis-py says DataError for the same inputs (None, bool, ...)
            raise DataError(f"Invalid command argument: {exc}") from None
    return b"".join(conn.pack_command(*args))


def _as_connection_error(exc: BaseException) -> Exception:
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return exc
    return RedisConnectionError(f"{type(exc).__name__}: {exc}")
