"""Redis Cluster failover: a master with a replica killed under traffic.

Real processes: two roomd instances on a private 3-master, 3-replica cluster
(``make_redis_cluster``). Requests for rooms of the dead master's shard may answer 503
``REDIS_UNAVAILABLE`` while the cluster promotes the replica, then go on without a roomd
restart; rooms on the other shards answer throughout; every live socket ends consistent.
Also: cluster errors reach clients as 503, never 500 (``store.guard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    MasterDownError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from roomd.domain import keys
from roomd.domain.errors import StoreUnavailable
from roomd.domain.store import guard
from tests.support.clients import Api, Socket, http, member_view
from tests.support.processes import RoomdProcess
from tests.support.redis_ha import ClusterServers

Spawn = Callable[..., RoomdProcess]
FAILOVER_SLACK = 5.0  # seconds after the cluster is healthy again within which roomd must serve the shard again


async def _raise(exc: BaseException) -> Any:
    raise exc


@pytest.mark.parametrize(
    "exc",
    [
        ClusterDownError("The cluster is down"),
        MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
        TryAgainError("Multiple keys request during rehashing of slot"),
        ClusterError("TTL exhausted."),
        SlotNotCoveredError('Slot "42" is not covered by the cluster.'),
        RedisConnectionError("Error 111 connecting to 127.0.0.1:7000. Connection refused."),
    ],
    ids=lambda exc: type(exc).__name__,
)
async def test_guard_maps_cluster_errors_to_store_unavailable(exc: Exception) -> None:
    """A shard without a master (mid-failover), a slot in migration or a dead node: 503, not 500."""
    with pytest.raises(StoreUnavailable):
        await guard(_raise(exc))


async def test_guard_keeps_other_response_errors() -> None:
    """A script bug stays a bug (500), it is not disguised as Redis being away."""
    with pytest.raises(ResponseError):
        await guard(_raise(ResponseError("ERR wrong number of arguments")))


async def test_master_killed_under_traffic(
    make_redis_cluster: Callable[..., ClusterServers], spawn_roomd: Spawn
) -> None:
    """SIGKILL the master of one shard while two instances serve joins to rooms on every shard: that
    shard's rooms answer 503 REDIS_UNAVAILABLE only until shortly after the replica is promoted, then the
    same processes serve them again; rooms on the other shards answer 201 throughout; every socket ends
    with the room's true members (its shard's sockets get a fresh ``room:state``) and sees the next event."""
    servers = make_redis_cluster(node_timeout_ms=2000)
    env = {**servers.env(), "REDIS_URL": "", "REDIS_COMMAND_TIMEOUT": "1000", "REDIS_CONNECT_TIMEOUT": "1000",
           "REDIS_MAX_RETRIES": "1", "ROOM_MAX_USERS": "10000"}  # fmt: skip
    instances = [spawn_roomd(**env), spawn_roomd(**env)]
    pids = [p.process.pid for p in instances if p.process]
    apis = [Api(p.http) for p in instances]

    def master_port(code: str) -> int:
        return servers.master_of_slot(key_slot(keys.layout().room(code).encode())).port

    by_master: dict[int, list[str]] = {}
    sockets: list[tuple[str, Socket]] = []
    while len(by_master) < 3 or min(len(c) for c in by_master.values()) < 2:  # 2 rooms on each shard
        host = await apis[0].create("Host")
        code = host["roomCode"]
        port = await asyncio.to_thread(master_port, code)
        if len(by_master.get(port, [])) >= 2:
            continue
        by_master.setdefault(port, []).append(code)
        player = await apis[1].join(code, "Player")
        hs = await Socket.connect(instances[0].ws, host["token"])
        await hs.expect("room:state")
        ps = await Socket.connect(instances[1].ws, player["token"])
        await ps.expect("room:state")
        sockets += [(code, hs), (code, ps)]
    # The shard that also holds this test client's rate-limit counters (throttle:{127.0.0.1}): HTTP
    # requests for rooms elsewhere must not depend on it either.
    throttle_slot = key_slot(keys.layout().throttle("127.0.0.1", 0).encode())
    victim = await asyncio.to_thread(servers.master_of_slot, throttle_slot)
    shard = set(by_master[victim.port])
    codes = [code for codes in by_master.values() for code in codes]

    results: list[tuple[float, str, int, Any]] = []
    stop = asyncio.Event()

    async def traffic(api: Api, offset: int) -> None:
        n = offset
        while not stop.is_set():
            code = codes[n % len(codes)]
            r = await http(api.base, "POST", f"/rooms/{code}/join", {"displayName": f"T{n}"})
            results.append((time.monotonic(), code, r.status, r.body))
            n += 1
            await asyncio.sleep(0.01)

    loops = [asyncio.create_task(traffic(api, i * 3)) for i, api in enumerate(apis)]
    await asyncio.sleep(0.5)
    killed_at = time.monotonic()
    await asyncio.to_thread(victim.kill)
    await asyncio.to_thread(servers.wait_healthy, 30)  # the replica promoted, cluster_state ok
    promoted_at = time.monotonic()
    assert victim.port not in [m.port for m in servers.masters()]
    deadline = promoted_at + 20
    while sum(1 for t, c, s, _ in results if t > promoted_at and c in shard and s == 201) < 20:
        assert time.monotonic() < deadline, f"no service on the shard 20 s after the failover: {results[-5:]}"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*loops)

    elsewhere = [(round(t - killed_at, 2), s, body) for t, c, s, body in results if c not in shard and s != 201]
    assert not elsewhere, elsewhere  # the other shards never noticed
    assert sum(1 for t, c, s, _ in results if c not in shard and killed_at < t < promoted_at) > 10  # and were asked
    odd = [(round(t - killed_at, 2), s, body) for t, c, s, body in results if c in shard and s not in (201, 503)]
    assert not odd, odd  # only successes and 503s, never a 500 or a hang
    unavailable = [t for t, c, s, body in results if s == 503]
    assert all(body["code"] == "REDIS_UNAVAILABLE" for t, c, s, body in results if s == 503)
    assert unavailable, "the kill did not interrupt anything: the test proved nothing"
    assert min(unavailable) >= killed_at and max(unavailable) <= promoted_at + FAILOVER_SLACK, (
        f"503s from {min(unavailable) - killed_at:.2f} s to {max(unavailable) - killed_at:.2f} s after the kill; "
        f"the cluster was healthy again {promoted_at - killed_at:.2f} s after it"
    )
    print(f"cluster failover: 503s for {max(unavailable) - killed_at:.2f} s after the kill "
          f"({len(unavailable)} of {sum(1 for _, c, _, _ in results if c in shard)} shard requests); "
          f"promoted after {promoted_at - killed_at:.2f} s")  # fmt: skip
    assert [p.process.pid for p in instances if p.process and p.process.poll() is None] == pids  # no restart

    for code, sock in sockets:
        if code in shard:  # the link to the dead master broke: a fresh room:state from the new one
            await sock.expect("room:state", timeout=10)
    markers = {code: (await apis[i % 2].join(code, "Marker"))["userId"] for i, code in enumerate(codes)}
    for code, sock in sockets:
        while True:  # events flow after the failover: the socket was not left behind (seq, subscription)
            data = await sock.expect("user:joined", timeout=10)
            if data["user"]["id"] == markers[code]:
                break
        truth = await apis[0].room(code)
        assert len(member_view(sock)) == truth.body["memberCount"], (
            f"room {code}: the socket's members differ from Redis"
        )


async def test_websocket_connects_to_other_shards_during_a_failover(
    make_redis_cluster: Callable[..., ClusterServers], spawn_roomd: Spawn
) -> None:
    """Kill the master holding ``roomd:instances``; sockets to rooms on the other shards still connect,
    and once the shard is back their socket-index entries are written and the sockets stay open."""
    servers = make_redis_cluster(node_timeout_ms=2000)
    env = {**servers.env(), "REDIS_URL": "", "REDIS_COMMAND_TIMEOUT": "1000", "REDIS_CONNECT_TIMEOUT": "1000",
           "REDIS_MAX_RETRIES": "1", "INSTANCE_TIMEOUT_MS": "1500"}  # fmt: skip
    roomd = spawn_roomd(**env)
    api = Api(roomd.http)
    layout = keys.layout()
    victim = await asyncio.to_thread(servers.master_of_slot, key_slot(layout.instances.encode()))
    codes: list[str] = []
    while len(codes) < 2:
        code = (await api.create("Host"))["roomCode"]
        slot = key_slot(layout.room(code).encode())
        if (await asyncio.to_thread(servers.master_of_slot, slot)).port != victim.port:
            codes.append(code)
    players = [await api.join(code, f"P{i}") for i in range(3) for code in codes]
    await asyncio.to_thread(victim.kill)
    sockets: list[Socket] = []
    try:
        for player in players:  # during the failover (node timeout 2 s): rooms on healthy shards
            sock = await Socket.connect(roomd.ws, player["token"])
            await sock.expect("room:state", timeout=5)
            sockets.append(sock)
    finally:
        await asyncio.to_thread(servers.wait_healthy, 30)
    cluster = RedisCluster.from_url(f"redis://{servers.startup_nodes.split(',')[0]}")
    try:
        deadline = time.monotonic() + 15
        entries: set[bytes] = set()
        while time.monotonic() < deadline:  # reconciliation writes the entries the failover kept out
            with contextlib.suppress(RedisError):
                instances = await cluster.zrange(layout.instances, 0, -1)
                entries = set().union(*[await cluster.smembers(layout.instance_sockets(i.decode())) for i in instances])
            if len(entries) >= len(players):
                break
            await asyncio.sleep(0.2)
        assert len(entries) >= len(players), entries
    finally:
        await cluster.aclose()
    for code in codes:  # a marker through each room: every socket is still open and live
        marker = await api.join(code, "Marker")
        for sock, player in zip(sockets, players, strict=True):
            if player["roomCode"] == code:
                while (await sock.expect("user:joined"))["user"]["id"] != marker["userId"]:
                    pass
