"""The auto-pipelining script connection (roomd/domain/pipeline.py) against a real redis-server.

Connection loss and silence are staged with a small TCP proxy between the pipeline and Redis,
so a call is provably in flight (Redis ran it, its reply is held) when the connection goes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import hiredis
import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError, ResponseError

from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.domain.pipeline import CallPipeline
from roomd.domain.store import LuaScript, RoomStore, guard, make_redis_client, script_pipeline
from roomd.protocol import ErrorCode
from tests.support.processes import RedisServer

# Returns its call number (a counter it increments) and its argument: replies in order, each to its caller.
COUNT = "return {redis.call('INCR', KEYS[1]), ARGV[1]}"
FAIL = "if ARGV[1] == 'x' then return redis.error_reply(ARGV[2]) end return ARGV[1]"


class Proxy:
    """A TCP relay to Redis that can hold Redis's replies back and cut every connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.released = asyncio.Event()
        self.released.set()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]
        for task in (self._pump(reader, up_writer, False), self._pump(up_reader, writer, True)):
            t = asyncio.create_task(task)
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: bool) -> None:
        try:
            while data := await reader.read(65536):
                if replies:
                    await self.released.wait()
                writer.write(data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def hold(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def cut(self) -> None:
        """Close every relayed connection (both sides), as a dead Redis or network would."""
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        self.release()
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = make_redis_client(redis_server.url, command_timeout=5)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def proxied(redis_server: RedisServer, client: aioredis.Redis) -> AsyncIterator[tuple[Proxy, aioredis.Redis]]:
    """A client whose connections go through a :class:`Proxy` (``client`` reaches Redis directly)."""
    proxy = Proxy(redis_server.port)
    relayed = make_redis_client(await proxy.start(), command_timeout=5, max_retries=0)
    yield proxy, relayed
    await relayed.aclose()
    await proxy.close()


def script(client: aioredis.Redis, text: str, timeout: float | None = 5) -> tuple[LuaScript, CallPipeline]:
    pipeline = script_pipeline(client, timeout)
    assert pipeline is not None
    return LuaScript(client, text, pipeline), pipeline


async def until(predicate: Any, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.01)


async def test_calls_of_one_iteration_go_out_in_one_write_and_are_answered_in_order(client: aioredis.Redis) -> None:
    count, pipeline = script(client, COUNT)
    await count(keys=["n"], args=["warm-up"])  # connects
    batches = pipeline.batches
    replies = await asyncio.gather(*(count(keys=["n"], args=[f"call {i}"]) for i in range(500)))
    assert replies == [[i + 2, f"call {i}".encode()] for i in range(500)]  # run in submission order, each to its caller
    assert pipeline.batches == batches + 1 and pipeline.connections == 1


async def test_the_store_runs_its_scripts_through_the_pipeline(client: aioredis.Redis) -> None:
    store = RoomStore(client, ttl_seconds=60, command_timeout=5)
    assert store.pipeline is not None
    rooms = await asyncio.gather(*(store.create_room(f"Host {i}") for i in range(20)))
    await asyncio.gather(*(store.set_lock(r.room_code, r.user_id, "lock") for r in rooms))
    assert all([(await store.get_room(r.room_code))["isLocked"] for r in rooms])
    assert store.pipeline.connections == 1 and store.pipeline.batches < 20 + 20 + 1  # batched


async def test_error_replies_map_as_before_and_fail_only_their_own_call(client: aioredis.Redis) -> None:
    fail, _ = script(client, FAIL)
    calls = [
        fail(keys=[], args=["ok 1"]),
        fail(keys=[], args=["x", "ROOM_NOT_FOUND"]),
        fail(keys=[], args=["x", 'VERSION_CONFLICT {"version":3}']),
        fail(keys=[], args=["x", "ERR something else"]),
        fail(keys=[], args=["ok 2"]),
    ]
    results = await asyncio.gather(*(guard(c, 5) for c in calls), return_exceptions=True)
    assert results[0] == b"ok 1" and results[4] == b"ok 2"
    assert isinstance(results[1], DomainError) and results[1].code is ErrorCode.ROOM_NOT_FOUND
    assert isinstance(results[2], DomainError) and results[2].code is ErrorCode.VERSION_CONFLICT
    assert results[2].data == {"version": 3}
    assert isinstance(results[3], ResponseError) and not isinstance(results[3], DomainError)
    store = RoomStore(client, ttl_seconds=60, command_timeout=5)
    with pytest.raises(DomainError) as info:
        await store.set_lock("ZZZZ", "nobody", "lock")
    assert info.value.code is ErrorCode.ROOM_NOT_FOUND


async def test_an_argument_redis_py_refuses_fails_its_call_alone(client: aioredis.Redis) -> None:
    fail, _ = script(client, FAIL)
    bad, good = await asyncio.gather(fail(keys=[], args=[None]), fail(keys=[], args=["fine"]), return_exceptions=True)
    assert isinstance(bad, DataError) and good == b"fine"


async def test_noscript_falls_back_to_eval_which_caches_the_script_again(client: aioredis.Redis) -> None:
    count, _ = script(client, COUNT)
    assert (await count(keys=["n"], args=["a"]))[0] == 1
    await client.script_flush()
    assert await client.script_exists(count.sha) == [False]
    replies = await asyncio.gather(*(count(keys=["n"], args=[str(i)]) for i in range(10)))
    assert sorted(r[0] for r in replies) == list(range(2, 12))
    assert await client.script_exists(count.sha) == [True]


async def test_a_lost_connection_fails_the_calls_in_flight_and_the_next_call_reconnects(
    proxied: tuple[Proxy, aioredis.Redis], client: aioredis.Redis
) -> None:
    proxy, relayed = proxied
    count, pipeline = script(relayed, COUNT)
    assert (await count(keys=["n"], args=["a"]))[0] == 1
    proxy.hold()
    in_flight = [asyncio.ensure_future(guard(count(keys=["n"], args=[str(i)]), 5)) for i in range(5)]

    async def ran() -> bool:  # Redis ran them; their replies are held in the proxy
        return await client.get("n") == b"6"

    await until(ran)
    proxy.cut()
    for call in in_flight:
        with pytest.raises(StoreUnavailable):
            await call
    proxy.release()
    assert (await guard(count(keys=["n"], args=["b"]), 5))[0] == 7  # a new connection
    assert pipeline.connections == 2


async def test_a_connection_closed_while_idle_is_replaced_by_the_next_call(
    proxied: tuple[Proxy, aioredis.Redis],
) -> None:
    proxy, relayed = proxied
    count, pipeline = script(relayed, COUNT)
    await count(keys=["n"], args=["a"])
    proxy.cut()
    await asyncio.sleep(0.05)  # the reader sees the close
    assert (await guard(count(keys=["n"], args=["b"]), 5))[0] == 2
    assert pipeline.connections == 2


async def test_redis_down_fails_calls_with_store_unavailable_then_recovers(private_redis: Any) -> None:
    server = private_redis()
    client = make_redis_client(server.url, command_timeout=2, connect_timeout=1, max_retries=0)
    try:
        count, _ = script(client, COUNT, timeout=2)
        assert (await guard(count(keys=["n"], args=["a"]), 2))[0] == 1
        server.stop()
        with pytest.raises(StoreUnavailable):
            await guard(count(keys=["n"], args=["b"]), 2)
        with pytest.raises(StoreUnavailable):  # no server to reconnect to
            await guard(count(keys=["n"], args=["c"]), 2)
        server.start()
        assert (await guard(count(keys=["n"], args=["d"]), 2))[0] == 1  # a fresh server
    finally:
        await client.aclose()


async def test_a_silent_redis_times_out_then_the_connection_is_replaced(
    proxied: tuple[Proxy, aioredis.Redis], client: aioredis.Redis
) -> None:
    proxy, relayed = proxied
    count, pipeline = script(relayed, COUNT, timeout=0.3)
    await count(keys=["n"], args=["a"])
    proxy.hold()
    with pytest.raises(StoreUnavailable):  # b ran, its reply is held
        await guard(count(keys=["n"], args=["b"]), 0.3)
    assert await client.get("n") == b"2"
    # b's caller gave up after Redis had said nothing for longer than the stall time (half the
    # timeout): the connection was dropped, so b's late reply can never be handed to another call.
    with pytest.raises(StoreUnavailable):  # c waits for a new connection, whose handshake is held
        await guard(count(keys=["n"], args=["c"]), 0.3)
    proxy.release()
    assert await guard(count(keys=["n"], args=["d"]), 5) == [3, b"d"]  # c was never sent
    assert pipeline.connections == 2


async def test_an_idle_connection_outlives_the_socket_timeout(redis_server: RedisServer) -> None:
    """The reader waits with ``read_response(timeout=math.inf)``: redis-py's documented "block
    indefinitely". If that ever falls back to socket_timeout again, this fails."""
    client = make_redis_client(redis_server.url, command_timeout=0.2)
    try:
        count, pipeline = script(client, COUNT)
        await count(keys=["idle"], args=["a"])
        await asyncio.sleep(0.5)
        await count(keys=["idle"], args=["b"])
        assert pipeline.connections == 1
        await client.delete("idle")
    finally:
        await client.aclose()


def test_hiredis_packs_commands_as_redis_py_does() -> None:
    """The pipeline packs with hiredis (C) instead of the asyncio connection's Python packer."""
    args = ("EVALSHA", hashlib.sha1(b"x").hexdigest(), 2, "room:{AB}", "ké", b"\x00raw", -3, 1.5, 0.1 + 0.2, 10**20, "")
    assert hiredis.pack_command(args) == b"".join(Connection().pack_command(*args))


async def test_closing_the_client_closes_the_pipeline_connection(redis_server: RedisServer) -> None:
    client = make_redis_client(redis_server.url, command_timeout=5)
    count, pipeline = script(client, COUNT)
    await count(keys=["closing"], args=["a"])
    await client.delete("closing")
    await client.aclose()  # closes the pool, which holds the pipeline's connection
    await asyncio.sleep(0.05)
    assert not pipeline._tasks  # the reader ended with the connection
