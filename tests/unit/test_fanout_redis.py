"""The one-Redis broker (roomd/fanout/redis_pubsub.py) against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from roomd.domain.bus_message import encode
from roomd.domain.keys import channel
from roomd.domain.redis_target import SingleTarget
from roomd.fanout import RedisBroker, make_broker


class Received:
    """The broker's deliver and on_resubscribed callbacks, recorded."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.resynced: list[list[str]] = []
        self.arrived = asyncio.Event()

    def deliver(self, code: str, raw: bytes) -> None:
        self.messages.append((code, raw))
        self.arrived.set()

    async def on_resubscribed(self, codes: list[str]) -> None:
        self.resynced.append(codes)

    async def next(self, timeout: float = 5) -> tuple[str, bytes]:
        await asyncio.wait_for(self.arrived.wait(), timeout)
        self.arrived.clear()
        return self.messages[-1]


async def until(check: Any, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def broker(redis_server: Any, redis_client: aioredis.Redis) -> AsyncIterator[tuple[RedisBroker, Received]]:
    got = Received()
    made = make_broker(SingleTarget(redis_server.url), redis_client, got.deliver, linger=0.1, check_interval=0.2)
    assert isinstance(made, RedisBroker)
    made.on_resubscribed = got.on_resubscribed
    await made.start(wait=5)
    yield made, got
    await made.close()


async def subscribers(client: aioredis.Redis, code: str) -> int:
    return dict(await client.pubsub_numsub(channel(code)))[channel(code).encode()]  # type: ignore[no-any-return]


async def test_publish_reaches_a_subscribed_room_and_linger_unsubscribes(
    broker: tuple[RedisBroker, Received], redis_client: aioredis.Redis
) -> None:
    bus, got = broker
    await bus.subscribe("RDS1")
    await bus.subscribe("RDS1")
    assert await subscribers(redis_client, "RDS1") == 1  # one SUBSCRIBE per process, however many sockets
    raw = encode("e", {}, seq=1)
    await redis_client.publish(channel("RDS1"), raw)
    assert await got.next() == ("RDS1", raw)
    bus.unsubscribe("RDS1")
    bus.unsubscribe("RDS1")
    assert await subscribers(redis_client, "RDS1") == 1  # lingering
    await until(lambda: "RDS1" not in bus.rooms())
    await until(lambda: bus.health().rooms == 0)
    for _ in range(50):
        if await subscribers(redis_client, "RDS1") == 0:
            break
        await asyncio.sleep(0.02)
    assert await subscribers(redis_client, "RDS1") == 0
    assert bus.health().connections == 1 and bus.health().kind == "redis"


async def test_a_dropped_connection_resubscribes_and_resyncs_every_room(
    broker: tuple[RedisBroker, Received], redis_client: aioredis.Redis
) -> None:
    """Redis drops the subscriber (CLIENT KILL): every held room is subscribed again, and named to
    on_resubscribed only once Redis has confirmed it, so what is published from then on arrives."""
    bus, got = broker
    for code in ("RDS2", "RDS3"):
        await bus.subscribe(code)
    assert await redis_client.client_kill_filter(_type="pubsub") >= 1
    await until(lambda: got.resynced)
    assert got.resynced == [["RDS2", "RDS3"]] and bus.reconnects == 1
    for code in ("RDS2", "RDS3"):
        await redis_client.publish(channel(code), encode("after", {}, seq=2))
        assert (await got.next())[0] == code


async def test_pubsub_messages_skip_redis_pys_debug_formatting(redis_server: Any) -> None:
    """quiet_push_handler reaches redis-py's parser (a private attribute: this fails if it goes away):
    messages then arrive without redis-py formatting each one for its "push_response" debug log."""
    import logging

    from roomd.fanout.redis_pubsub import quiet_push_handler

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("push_response")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    pool = SingleTarget(redis_server.url).pubsub_pool()
    publisher = aioredis.Redis.from_url(redis_server.url)
    try:
        for quiet in (False, True):  # the control first: redis-py does log each message
            conn = pool.make_connection()
            if quiet:
                assert quiet_push_handler(conn), "redis-py's pub/sub parser hook moved"
            await conn.connect()
            await conn.send_command("SUBSCRIBE", "quiet-test")
            await conn.read_response(timeout=5, push_request=True)  # the subscribe confirmation
            records.clear()
            await publisher.publish("quiet-test", b"payload")
            message = await conn.read_response(timeout=5, push_request=True)
            assert list(message) == [b"message", b"quiet-test", b"payload"]
            assert bool(records) is not quiet
            await conn.disconnect()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        await pool.aclose()
        await publisher.aclose()
