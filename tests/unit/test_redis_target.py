"""Where Redis is (REDIS_URL, Sentinel, Cluster): settings, refusals, and the clients on real servers.

The Sentinel and Cluster parts run against the fixtures of tests/support/redis_ha.py
(started only when one of these tests asks for them).
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MovedError

from roomd.config import ConfigError, from_env, redis_topology_from_env
from roomd.domain.errors import StoreUnavailable
from roomd.domain.redis_target import (
    ClusterTarget,
    SentinelTarget,
    SingleTarget,
    check_supported,
    target_from_settings,
)
from roomd.domain.store import guard
from tests.support.processes import ROOT, TEST_SECRET
from tests.support.redis_ha import ClusterServers, SentinelServers

PROD = {"ROOMD_ENV": "production", "JWT_SECRET": "x" * 32}
SENTINELS = {"REDIS_SENTINELS": "10.0.0.1:26379,10.0.0.2", "REDIS_SENTINEL_MASTER": "main"}

# -- settings -----------------------------------------------------------------------------------------


def test_sentinel_and_cluster_settings() -> None:
    s = from_env({**PROD, **SENTINELS, "REDIS_PASSWORD": " p w ", "REDIS_SENTINEL_PASSWORD": "sp"})
    assert s.redis_topology == "sentinel" and s.redis_url is None
    assert s.redis_sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379)) and s.redis_sentinel_master == "main"
    assert s.redis_password == " p w " and s.redis_sentinel_password == "sp"  # a password is taken as written
    assert "p w" not in repr(s) and "sp'" not in repr(s)
    c = from_env({**PROD, "REDIS_CLUSTER_NODES": "a:7000, b:7001,[::1]:7002,a:7000,c", "REDIS_USERNAME": "roomd",
                  "REDIS_PASSWORD": "pw"})  # fmt: skip
    assert c.redis_topology == "cluster"
    assert c.redis_cluster_nodes == (("a", 7000), ("b", 7001), ("::1", 7002), ("c", 6379))
    assert from_env(PROD | {"REDIS_URL": "redis://h:1/0"}).redis_topology == "single"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_CLUSTER_NODES": "a:1", **SENTINELS}, ["REDIS_CLUSTER_NODES", "REDIS_SENTINELS"]),
        ({"REDIS_CLUSTER_NODES": "a:1", "REDIS_URL": "redis://h/0"}, ["REDIS_CLUSTER_NODES", "REDIS_URL"]),
        ({**SENTINELS, "REDIS_HOST": "h"}, ["REDIS_SENTINELS", "REDIS_HOST"]),
        ({"REDIS_SENTINELS": "a:1"}, ["REDIS_SENTINEL_MASTER"]),
        ({"REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "redis://h/0"}, ["REDIS_SENTINEL_MASTER", "REDIS_SENTINELS"]),
        ({"REDIS_URL": "redis://h/0", "REDIS_PASSWORD": "p"}, ["REDIS_PASSWORD", "REDIS_URL"]),
        ({"REDIS_URL": "redis://h/0", "REDIS_USERNAME": "u"}, ["REDIS_USERNAME"]),
        ({"REDIS_CLUSTER_NODES": "a:1", "REDIS_SENTINEL_PASSWORD": "p"}, ["REDIS_SENTINEL_PASSWORD"]),
        ({**SENTINELS, "REDIS_USERNAME": "u"}, ["REDIS_USERNAME", "REDIS_PASSWORD"]),
        ({**SENTINELS, "REDIS_SENTINEL_USERNAME": "u"}, ["REDIS_SENTINEL_USERNAME", "REDIS_SENTINEL_PASSWORD"]),
        ({"REDIS_CLUSTER_NODES": "redis://a:7000"}, ["REDIS_CLUSTER_NODES", "not URLs"]),
        ({"REDIS_CLUSTER_NODES": "::1:7000"}, ["REDIS_CLUSTER_NODES", "brackets"]),
        ({"REDIS_CLUSTER_NODES": "a:x"}, ["REDIS_CLUSTER_NODES"]),
        ({"REDIS_CLUSTER_NODES": "a:70000"}, ["REDIS_CLUSTER_NODES"]),
        ({"REDIS_CLUSTER_NODES": " , "}, ["REDIS_CLUSTER_NODES"]),
        ({"REDIS_SENTINELS": ":26379", "REDIS_SENTINEL_MASTER": "m"}, ["REDIS_SENTINELS", "no host"]),
        ({"REDIS_SENTINELS": "a", "REDIS_SENTINEL_MASTER": "my master"}, ["REDIS_SENTINEL_MASTER"]),
        ({}, ["REDIS_URL", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES"]),  # production needs one of them
    ],
)
def test_wrong_combinations_name_the_variables(env: dict[str, str], named: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({**PROD, **env})
    for name in named:
        assert name in str(caught.value)


def test_topology_alone_is_what_roomctl_reads() -> None:
    assert redis_topology_from_env({}) == {}
    assert redis_topology_from_env({"REDIS_URL": "redis://h/0"}) == {}
    with pytest.raises(ConfigError, match="REDIS_SENTINEL_MASTER"):
        redis_topology_from_env({"REDIS_SENTINELS": "a"})


def test_targets_and_their_descriptions_hide_passwords() -> None:
    single = target_from_settings(from_env({}), "redis://:hunter22@h:1/0")
    assert isinstance(single, SingleTarget) and "hunter22" not in single.describe() + repr(single)
    sentinel = target_from_settings(from_env({**SENTINELS, "REDIS_PASSWORD": "hunter22"}))
    assert isinstance(sentinel, SentinelTarget) and sentinel.master == "main"
    assert "hunter22" not in sentinel.describe() + repr(sentinel) and "10.0.0.2:26379" in sentinel.describe()
    cluster = target_from_settings(from_env({"REDIS_CLUSTER_NODES": "[::1]:7000", "REDIS_PASSWORD": "hunter22"}))
    assert isinstance(cluster, ClusterTarget) and cluster.describe() == "Redis Cluster via [::1]:7000"
    check_supported(cluster)  # the per-room key layout runs on a Cluster (CLUSTER_READY)
    with pytest.raises(ConfigError, match="REDIS_CLUSTER_NODES"), pytest.MonkeyPatch.context() as patch:
        patch.setattr("roomd.domain.redis_target.CLUSTER_READY", False)
        check_supported(cluster)  # the switch still refuses, naming the variable
    with pytest.raises(ConfigError, match="REDIS_URL"):
        target_from_settings(from_env({}))


def _run_roomd(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROOM", "REDIS_", "JWT_", "NOTIFY_"))}
    return subprocess.run([sys.executable, "-m", "roomd", "--env-file", "/nonexistent"], cwd=ROOT,
                          env={**clean, **PROD, "JWT_SECRET": TEST_SECRET, "HOST": "127.0.0.1", "PORT": "0", **env},
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_URL": "redis://127.0.0.1:1/0", **SENTINELS}, "REDIS_SENTINELS and REDIS_URL are exclusive"),
        ({"REDIS_CLUSTER_NODES": "127.0.0.1:1", "REDIS_URL": "redis://h"}, "REDIS_CLUSTER_NODES and REDIS_URL are"),
    ],
)
def test_roomd_refuses_to_start_naming_the_variables(env: dict[str, str], named: str) -> None:
    result = _run_roomd(env)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr


# -- Sentinel -----------------------------------------------------------------------------------------


def _sentinel_target(servers: SentinelServers) -> SentinelTarget:
    target = target_from_settings(from_env(servers.env()))
    assert isinstance(target, SentinelTarget)
    return target


async def test_sentinel_client_reaches_the_master_with_both_passwords(redis_sentinel: SentinelServers) -> None:
    target = _sentinel_target(redis_sentinel)
    client = target.command_client(command_timeout=5)
    try:
        await client.set("redis-target:probe", "1")
        info = await client.info("server")
        assert int(info["tcp_port"]) == redis_sentinel.master_port()
        assert (await client.info("replication"))["role"] == "master"
        sentinel_clients = client.connection_pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
    finally:
        await client.aclose()
    # Closing the client closed its connections to the Sentinels too (else: ResourceWarning, leaks).
    assert all(not c.connection_pool._in_use_connections for c in sentinel_clients)
    assert all(not c.is_connected for s in sentinel_clients for c in s.connection_pool._available_connections)


async def test_sentinel_wrong_password_is_an_error_not_a_hang(redis_sentinel: SentinelServers) -> None:
    target = target_from_settings(from_env({**redis_sentinel.env(), "REDIS_SENTINEL_PASSWORD": "wrong-password"}))
    client = target.command_client(command_timeout=3, max_retries=0)
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            await guard(client.ping(), 3)
        assert time.monotonic() - started < 3.5
        assert "No master found" in str(caught.value) or isinstance(caught.value, StoreUnavailable)
    finally:
        await client.aclose()


async def test_sentinel_pool_waits_for_a_free_connection(redis_sentinel: SentinelServers) -> None:
    """The Sentinel pool is a blocking one, as make_redis_client's: a burst queues, never "Too many connections"."""
    client = _sentinel_target(redis_sentinel).command_client(command_timeout=5, max_connections=2)
    try:
        results = await asyncio.gather(*(client.blpop([f"redis-target:empty:{i}"], timeout=0.2) for i in range(6)))
        assert results == [None] * 6
        pool = client.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 2  # type: ignore[attr-defined]
    finally:
        await client.aclose()


async def test_sentinel_clients_follow_a_failover(make_redis_sentinel: Any) -> None:
    """After the master dies, commands fail as StoreUnavailable (never hang, never another error) until the
    Sentinels promote the replica; then the same client and a new bus connection reach the new master."""
    servers: SentinelServers = make_redis_sentinel()
    target = _sentinel_target(servers)
    client = target.command_client(command_timeout=1, connect_timeout=1, max_retries=1)
    pool = target.pubsub_pool(connect_timeout=1)
    try:
        await client.set("before", "1")
        conn = pool.make_connection()
        await conn.connect()
        old = servers.master_port()
        assert conn.port == old
        await conn.send_command("SUBSCRIBE", "redis-target:bus")
        await conn.read_response(push_request=True)  # subscribe replies are read as push messages (redis-py 8)
        servers.kill_master()
        with pytest.raises((RedisConnectionError, OSError)):  # the dead master: the bus reconnects
            await conn.read_response(timeout=math.inf, push_request=True)
        await conn.disconnect()
        failures = 0
        deadline = time.monotonic() + 30
        while True:
            try:
                await guard(client.set("after", "1"), 1.5)
                break
            except StoreUnavailable:
                failures += 1
                assert time.monotonic() < deadline, "no new master within 30 s"
                await asyncio.sleep(0.1)
        new = servers.master_port()
        assert new != old and failures > 0
        assert await client.get("before") == b"1"  # replicated before the kill
        assert int((await client.info("server"))["tcp_port"]) == new
        conn = pool.make_connection()  # what the bus does on reconnect: asks the Sentinels again
        await conn.connect()
        assert conn.port == new
        await conn.disconnect()
    finally:
        await client.aclose()
        await pool.aclose()


# -- Cluster ------------------------------------------------------------------------------------------


def _cluster_target(servers: ClusterServers) -> ClusterTarget:
    target = target_from_settings(from_env(servers.env()))
    assert isinstance(target, ClusterTarget)
    return target


def _key_for_master(cluster: RedisCluster, servers: ClusterServers, master_port: int, prefix: str) -> str:
    for i in range(10_000):
        key = f"{prefix}{{{i}}}"
        if servers.master_of_slot(cluster.keyslot(key)).port == master_port:
            return key
    raise AssertionError("no key found for that master")


async def test_cluster_client_reaches_all_three_masters(redis_cluster: ClusterServers) -> None:
    target = _cluster_target(redis_cluster)
    cluster: Any = target.command_client(command_timeout=5)
    try:
        await cluster.initialize()
        masters = [m.port for m in redis_cluster.masters()]
        assert len(masters) == 3
        keys = [_key_for_master(cluster, redis_cluster, port, "redis-target:") for port in masters]
        for key in keys:
            await cluster.set(key, key)
        for key, port in zip(keys, masters, strict=True):
            assert await cluster.get(key) == key.encode()
            with redis_cluster.node(port).client() as direct:  # the key really lives on that master
                assert direct.execute_command("GET", key) == key.encode()
    finally:
        await cluster.aclose()


async def _ssubscribe(target: ClusterTarget, node: tuple[str, int], name: str) -> Any:
    conn = target.shard_pubsub_connection(node, connect_timeout=2)
    await conn.connect()
    await conn.send_command("SSUBSCRIBE", name)
    return conn, await conn.read_response(timeout=5, push_request=True)


async def test_cluster_shard_connection_receives_spublish_of_its_slot(redis_cluster: ClusterServers) -> None:
    target = _cluster_target(redis_cluster)
    cluster: Any = target.command_client(command_timeout=5)
    try:
        name = "room:{KXQD}:events"
        node = await target.shard_node(cluster, name)
        assert node[1] == redis_cluster.master_of_slot(cluster.keyslot(name)).port
        conn, confirmed = await _ssubscribe(target, node, name)
        assert confirmed[0] == b"ssubscribe" and confirmed[1] == name.encode()
        assert await cluster.spublish(name, b"frame") == 1
        message = await conn.read_response(timeout=5, push_request=True)
        assert message == [b"smessage", name.encode(), b"frame"]
        await conn.disconnect()
        other = next(m for m in redis_cluster.masters() if m.port != node[1])
        conn = target.shard_pubsub_connection(("127.0.0.1", other.port))
        await conn.connect()
        await conn.send_command("SSUBSCRIBE", name)
        with pytest.raises(MovedError) as moved:  # a node that does not serve the slot says which does
            await conn.read_response(timeout=5, push_request=True)
        assert (moved.value.host, moved.value.port) == node
        await conn.disconnect()
    finally:
        await cluster.aclose()


async def test_cluster_failover_moves_a_slot_and_shard_node_follows(make_redis_cluster: Any) -> None:
    """With passwords: kill the master of a channel's slot; the command client recovers by itself and
    ``shard_node(refresh=True)`` names the promoted replica, where SSUBSCRIBE hears SPUBLISH again."""
    servers: ClusterServers = make_redis_cluster(node_timeout_ms=1000, password="cluster-password-1")
    target = _cluster_target(servers)
    cluster: Any = target.command_client(command_timeout=2, connect_timeout=1)
    try:
        name = "room:{ABCD}:events"
        old = await target.shard_node(cluster, name)
        servers.node(old[1]).kill()
        servers.wait_healthy()
        deadline = time.monotonic() + 30
        while True:
            try:
                await cluster.set("{ABCD}", "1")  # the same slot: redis-py re-reads the topology by itself
                break
            except Exception:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
        new = await target.shard_node(cluster, name, refresh=True)
        assert new != old and new[1] == servers.master_of_slot(cluster.keyslot(name)).port
        conn, _ = await _ssubscribe(target, new, name)
        assert await cluster.spublish(name, b"after") == 1
        assert await conn.read_response(timeout=5, push_request=True) == [b"smessage", name.encode(), b"after"]
        await conn.disconnect()
    finally:
        await cluster.aclose()


async def test_single_target_is_make_redis_client(redis_server: Any) -> None:
    target = target_from_settings(from_env({"REDIS_URL": redis_server.url}))
    client = target.command_client(command_timeout=2)
    pool = target.pubsub_pool(connect_timeout=2)
    try:
        assert isinstance(client, aioredis.Redis) and await client.ping()
        assert type(client.connection_pool).__name__ == "BlockingConnectionPool"
        conn = pool.make_connection()
        await conn.connect()
        assert conn.socket_timeout is None  # the subscriber is idle by design: no read timeout
        await conn.disconnect()
    finally:
        await client.aclose()
        await pool.aclose()


def test_every_topology_variable_is_documented() -> None:
    from roomd.config import TOPOLOGY_VARIABLES

    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    for name in TOPOLOGY_VARIABLES:
        assert f"# {name}=" in example, f"{name} is not in .env.example"
        assert f"`{name}`" in readme, f"{name} is not in README's configuration table"
    for name in ("REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_CLUSTER_NODES"):
        assert name in deployment, f"{name} is not in docs/deployment.md"


async def test_a_burst_on_a_cluster_waits_for_connections_instead_of_failing(redis_cluster: ClusterServers) -> None:
    """redis-py's cluster client fails a command at once past max_connections to a node (MaxConnectionsError):
    a burst of creates answered 503 while Redis idled. Commands now queue, as with one Redis's blocking pool."""
    cluster: Any = _cluster_target(redis_cluster).command_client(command_timeout=5, max_connections=4)
    try:
        key = "redis-target:{burst}"
        results = await asyncio.gather(*(cluster.incr(key) for _ in range(200)))
        assert sorted(results) == list(range(1, 201))
        await cluster.delete(key)
    finally:
        await cluster.aclose()
