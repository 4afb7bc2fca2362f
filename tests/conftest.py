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
    yield from RedisServer.serve()


# -- One Redis or the cluster: the protocol suites run on both ----------------------------------------
# Tests of the modules in CLUSTER_MODULES run twice: on the private redis-server ("single") and with
# roomd, redis_client and store on the session's 3-master cluster ("cluster", marker `cluster`;
# deselect with -m 'not cluster'). Every other test sees "single" only. The cluster starts once per
# session (~2 s) and the session roomd on it once; tests are grouped by topology (session-scoped param).
CLUSTER_MODULES = frozenset({
    "tests/e2e/test_http_api.py",
    "tests/e2e/test_ws_protocol.py",
    "tests/e2e/test_game_channel.py",
    "tests/e2e/test_presence.py",
    "tests/e2e/test_recovery.py",
    "tests/e2e/test_audience.py",
})  # fmt: skip


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_topology" not in metafunc.fixturenames:
        return
    module = metafunc.definition.path.relative_to(metafunc.config.rootpath).as_posix()
    if module in CLUSTER_MODULES:
        topologies = ["single", pytest.param("cluster", marks=pytest.mark.cluster)]
        metafunc.parametrize("redis_topology", topologies, indirect=True, scope="session")


@pytest.fixture(scope="session")
def redis_topology(request: pytest.FixtureRequest) -> str:
    """``single`` or ``cluster``: where this test's roomd, redis_client and store are."""
    return getattr(request, "param", "single")


def topology_env(request: pytest.FixtureRequest, topology: str) -> dict[str, str]:
    """Environment for a roomd on ``topology``: the cluster's REDIS_CLUSTER_NODES (REDIS_URL unset)."""
    if topology != "cluster":
        return {}
    cluster: ClusterServers = request.getfixturevalue("redis_cluster")
    return {**cluster.env(), "REDIS_URL": ""}


@pytest.fixture
async def redis_client(
    redis_server: RedisServer, redis_topology: str, request: pytest.FixtureRequest
) -> AsyncIterator[aioredis.Redis]:
    if redis_topology == "cluster":
        from roomd.config import from_env
        from roomd.domain.redis_target import target_from_settings

        target = target_from_settings(from_env(topology_env(request, redis_topology)))
        client: Any = target.command_client(command_timeout=5)
        await client.flushdb(target_nodes="primaries")  # the session's test cluster only
    else:
        client = make_redis_client(redis_server.url, command_timeout=5)
        await client.flushdb()  # our private server only
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_client: aioredis.Redis, redis_topology: str) -> RoomStore:
    return RoomStore(redis_client, ttl_seconds=600, max_users=10, sharded_pubsub=redis_topology == "cluster")


@pytest.fixture(scope="session")
def roomd(redis_server: RedisServer, redis_topology: str, request: pytest.FixtureRequest) -> Iterator[RoomdProcess]:
    """The shared roomd process for end-to-end tests that need no special settings (one per topology)."""
    process = RoomdProcess(redis_server.url, **topology_env(request, redis_topology)).start()
    yield process
    process.stop()


@pytest.fixture
def api(roomd: RoomdProcess, redis_client: aioredis.Redis) -> Api:
    return Api(roomd.http)


@pytest.fixture
async def spawn_roomd(
    redis_server: RedisServer, redis_topology: str, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., RoomdProcess]]:
    """Start extra roomd processes with custom settings; all stopped after the test.

    They use the test's topology (the cluster under the `cluster` parametrization) unless the
    test names a ``redis_url`` or its own REDIS_* variables.

    Stopped from a thread while the test's event loop keeps running: a draining roomd
    closes each socket with 1001 and waits for the client's close frame, which a
    blocked loop never sends (5 s per process, Tornado's close timeout).
    """
    started: list[RoomdProcess] = []

    def start(redis_url: str | None = None, wait: bool = True, **env: str) -> RoomdProcess:
        if redis_url is None and not any(name.startswith("REDIS_") for name in env):
            env = {**topology_env(request, redis_topology), **env}
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
