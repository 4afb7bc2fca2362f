"""Fixtures: one private redis-server per session, roomd processes on top of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from roomd.domain.store import RoomStore, make_redis_client
from tests.support.clients import Api, Socket
from tests.support.processes import RedisServer, RoomdProcess
from tests.support.redis_ha import ClusterServers, SentinelServers


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = make_redis_client(redis_server.url, command_timeout=5)
    await client.flushdb()  # our private server only
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> RoomStore:
    return RoomStore(redis_client, ttl_seconds=600, max_users=10)


@pytest.fixture(scope="session")
def roomd(redis_server: RedisServer) -> Iterator[RoomdProcess]:
    """The shared roomd process for end-to-end tests that need no special settings."""
    process = RoomdProcess(redis_server.url).start()
    yield process
    process.stop()


@pytest.fixture
def api(roomd: RoomdProcess, redis_client: aioredis.Redis) -> Api:
    return Api(roomd.http)


@pytest.fixture
async def spawn_roomd(redis_server: RedisServer) -> AsyncIterator[Callable[..., RoomdProcess]]:
    """Start extra roomd processes with custom settings; all stopped after the test.

    Stopped from a thread while the test's event loop keeps running: a draining roomd
    closes each socket with 1001 and waits for the client's close frame, which a
    blocked loop never sends (5 s per process, Tornado's close timeout).
    """
    started: list[RoomdProcess] = []

    def start(redis_url: str | None = None, wait: bool = True, **env: str) -> RoomdProcess:
        process = RoomdProcess(redis_url or redis_server.url, **env)
        started.append(process)
        return process.start(wait=wait)

    yield start
    for process in started:
        await asyncio.to_thread(process.stop)


@pytest.fixture(autouse=True)
async def close_sockets() -> AsyncIterator[None]:
    """Close every client WebSocket a test opened (unclosed ones warn, and warnings fail)."""
    yield
    sockets, Socket.opened[:] = list(Socket.opened), []
    for sock in sockets:
        sock.close()


@pytest.fixture
def private_redis() -> Iterator[Callable[..., RedisServer]]:
    """Extra redis-servers a test may stop, pause or restart without touching the shared one."""
    started: list[RedisServer] = []

    def start(persist: bool = False) -> RedisServer:
        server = RedisServer(persist=persist)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.cleanup()


# -- Redis Cluster and Sentinel (tests/support/redis_ha.py): started only by tests that ask ------------


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterServers]:
    """3 masters + 3 replicas, no password, shared by the session (~2 s to start). Never kill its nodes:
    a test that does takes its own from ``make_redis_cluster``. ``.env()`` gives REDIS_CLUSTER_NODES."""
    servers = ClusterServers(node_timeout_ms=5000)  # a loaded machine must not look like a dead node
    try:
        yield servers.start()
    finally:
        servers.cleanup()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelServers]:
    """Master + replica + 3 Sentinels, data nodes and Sentinels password-protected, shared by the session
    (~2 s to start). Never kill its master: use ``make_redis_sentinel``. ``.env()`` gives the variables."""
    servers = SentinelServers(down_after_ms=5000, failover_timeout_ms=10_000,  # no failover on a mere stall
                              password="data-nodes-password-1", sentinel_password="sentinels-password-1")  # fmt: skip
    try:
        yield servers.start()
    finally:
        servers.cleanup()


@pytest.fixture
def make_redis_cluster() -> Iterator[Callable[..., ClusterServers]]:
    """Private clusters a test may break (kill a master, ...); removed after the test."""
    started: list[ClusterServers] = []

    def start(**options: Any) -> ClusterServers:
        servers = ClusterServers(**options)
        started.append(servers)
        return servers.start()

    yield start
    for servers in started:
        servers.cleanup()


@pytest.fixture
def make_redis_sentinel() -> Iterator[Callable[..., SentinelServers]]:
    """Private Sentinel setups a test may break (kill the master, ...); removed after the test."""
    started: list[SentinelServers] = []

    def start(**options: Any) -> SentinelServers:
        servers = SentinelServers(**options)
        started.append(servers)
        return servers.start()

    yield start
    for servers in started:
        servers.cleanup()
