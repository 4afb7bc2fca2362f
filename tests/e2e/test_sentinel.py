"""roomd and roomctl on Redis Sentinel: the protocol, and a master killed under traffic.

Real processes: roomd instances configured with REDIS_SENTINELS / REDIS_SENTINEL_MASTER
(no REDIS_URL), Sentinels, a master and a replica from tests/support/redis_ha.py.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from click.testing import CliRunner, Result

from roomctl.cli import cli
from roomd.config import from_env
from roomd.domain.redis_target import target_from_settings
from tests.support.clients import Api, Socket, http, member_view
from tests.support.processes import RoomdProcess
from tests.support.redis_ha import SentinelServers

Spawn = Callable[..., RoomdProcess]
FAILOVER_SLACK = 5.0  # seconds after the Sentinels name the new master within which roomd must be serving again


def _sentinel_env(servers: SentinelServers, **extra: str) -> dict[str, str]:
    return {**servers.env(), "REDIS_URL": "", **extra}  # REDIS_URL="" unsets the test default


def _roomctl(*args: str, env: dict[str, str]) -> Result:
    clean: dict[str, str | None] = {n: None for n in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "ROOMCTL_REDIS_URL",
                                                       "ROOMCTL_ENV_FILE", "STATE_DIR", "ROOMD_ENV")}  # fmt: skip
    return CliRunner().invoke(cli, ["--env-file", "", *args], env={**clean, **env}, prog_name="roomctl")


async def test_protocol_and_roomctl_on_sentinel(redis_sentinel: SentinelServers, spawn_roomd: Spawn) -> None:
    """Two roomd instances on the Sentinel-managed master (passwords on data nodes and Sentinels)."""
    env = _sentinel_env(redis_sentinel)
    a, b = spawn_roomd(**env), spawn_roomd(**env)
    assert "Sentinel master 'roomd-test' via" in a.logs() and "data-nodes-password" not in a.logs()
    host = await Api(a.http).create("Ana")
    code = host["roomCode"]
    player = await Api(b.http).join(code, "Bob")
    hs = await Socket.connect(a.ws, host["token"])
    state = await hs.expect("room:state")
    assert [u["displayName"] for u in state["users"]] == ["Ana", "Bob"]
    ps = await Socket.connect(b.ws, player["token"])
    await ps.expect("room:state")
    assert (await hs.expect("user:connected"))["user"]["id"] == player["userId"]  # from instance b to a
    await hs.send("room:toggle_lock")
    assert (await ps.expect("room:lock_toggled"))["isLocked"] is True
    refused = await http(b.http, "POST", f"/rooms/{code}/join", {"displayName": "Cy"})
    assert refused.status == 400 and refused.body["code"] == "ROOM_LOCKED"
    room = await Api(a.http).room(code)
    assert room.status == 200 and room.body["memberCount"] == 2 and room.body["isLocked"] is True

    shown = await asyncio.to_thread(_roomctl, "rooms", "show", code, "--json", env=redis_sentinel.env())
    assert shown.exit_code == 0, shown.output
    assert code in shown.stdout and "Bob" in shown.stdout
    wrong = {**redis_sentinel.env(), "REDIS_PASSWORD": "not-the-password"}
    failed = await asyncio.to_thread(_roomctl, "rooms", "list", env=wrong)
    assert failed.exit_code == 3 and "Sentinel master 'roomd-test'" in failed.stderr
    assert "not-the-password" not in failed.output and "data-nodes-password" not in failed.output
    mixed = await asyncio.to_thread(_roomctl, "rooms", "list", env={**redis_sentinel.env(), "REDIS_URL": "redis://h"})
    assert mixed.exit_code == 2 and "REDIS_SENTINELS and REDIS_URL are exclusive" in mixed.stderr


async def test_master_killed_under_traffic(make_redis_sentinel: Callable[..., SentinelServers],
                                           spawn_roomd: Spawn) -> None:  # fmt: skip
    """SIGKILL the master while two instances serve joins: requests answer 503 REDIS_UNAVAILABLE only
    until shortly after the Sentinels promote the replica, then the same processes serve again; every
    socket is resynchronised (``room:state`` after the bus reconnected) and sees the next event."""
    servers = make_redis_sentinel()
    env = _sentinel_env(servers, REDIS_COMMAND_TIMEOUT="1000", REDIS_CONNECT_TIMEOUT="1000", REDIS_MAX_RETRIES="1",
                        ROOM_MAX_USERS="10000")  # fmt: skip
    instances = [spawn_roomd(**env), spawn_roomd(**env)]
    pids = [p.process.pid for p in instances if p.process]
    apis = [Api(p.http) for p in instances]
    codes: list[str] = []
    sockets: list[tuple[str, Socket]] = []
    for i in range(3):
        host = await apis[0].create(f"Host{i}")
        code = host["roomCode"]
        player = await apis[1].join(code, f"Player{i}")
        hs = await Socket.connect(instances[0].ws, host["token"])
        await hs.expect("room:state")
        ps = await Socket.connect(instances[1].ws, player["token"])
        await ps.expect("room:state")
        codes.append(code)
        sockets += [(code, hs), (code, ps)]

    results: list[tuple[float, int, Any]] = []
    stop = asyncio.Event()

    async def traffic(api: Api, offset: int) -> None:
        n = offset
        while not stop.is_set():
            r = await http(api.base, "POST", f"/rooms/{codes[n % len(codes)]}/join", {"displayName": f"T{n}"})
            results.append((time.monotonic(), r.status, r.body))
            n += 2
            await asyncio.sleep(0.01)

    loops = [asyncio.create_task(traffic(api, i)) for i, api in enumerate(apis)]
    await asyncio.sleep(0.5)
    old = servers.master_port()
    killed_at = time.monotonic()
    await asyncio.to_thread(servers.kill_master)
    new = (await asyncio.to_thread(servers.wait_failover, old)).port
    promoted_at = time.monotonic()
    deadline = promoted_at + 20
    while sum(1 for t, s, _ in results if t > promoted_at and s == 201) < 20:
        assert time.monotonic() < deadline, f"no service 20 s after the failover: {results[-5:]}"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*loops)

    odd = [(round(t - killed_at, 2), s, body) for t, s, body in results if s != 201 and s != 503]
    assert not odd, odd  # only successes and 503s, never a 500 or a hang
    unavailable = [t for t, s, body in results if s == 503]
    assert all(body["code"] == "REDIS_UNAVAILABLE" for t, s, body in results if s == 503)
    assert unavailable, "the kill did not interrupt anything: the test proved nothing"
    assert min(unavailable) >= killed_at and max(unavailable) <= promoted_at + FAILOVER_SLACK, (
        f"503s from {min(unavailable) - killed_at:.2f} s to {max(unavailable) - killed_at:.2f} s after the kill; "
        f"the new master was named {promoted_at - killed_at:.2f} s after it"
    )
    assert [p.process.pid for p in instances if p.process and p.process.poll() is None] == pids  # no restart
    for p in instances:
        assert (await http(p.http, "GET", "/health")).status == 200

    for _code, sock in sockets:  # the bus lost its master: every socket gets a fresh room:state from the new one
        await sock.expect("room:state", timeout=10)
    marker = await apis[0].join(codes[0], "Marker")
    others = [await apis[1].join(code, "Marker") for code in codes[1:]]
    markers = dict(zip(codes, [marker["userId"], *(m["userId"] for m in others)], strict=True))
    for code, sock in sockets:
        while True:  # events flow again after the resync: the socket was not left behind (seq, subscription)
            data = await sock.expect("user:joined", timeout=10)
            if data["user"]["id"] == markers[code]:
                break
        truth = await apis[0].room(code)
        assert len(member_view(sock)) == truth.body["memberCount"], (
            f"room {code}: the socket's members differ from Redis"
        )
    client = target_from_settings(from_env(servers.env())).command_client(command_timeout=2)
    try:
        assert int((await client.info("server"))["tcp_port"]) == new
    finally:
        await client.aclose()


async def test_sentinel_env_reaches_a_plain_client(redis_sentinel: SentinelServers) -> None:
    """The fixture's variables are what roomd reads (a guard for the fixture itself)."""
    client: aioredis.Redis = target_from_settings(from_env(redis_sentinel.env())).command_client(command_timeout=2)
    try:
        assert (await client.info("replication"))["role"] == "master"
    finally:
        await client.aclose()


async def test_writes_lost_in_a_failover_leave_no_socket_behind(make_redis_sentinel: Callable[..., SentinelServers],
                                                               spawn_roomd: Spawn) -> None:  # fmt: skip
    """Asynchronous replication: joins Redis acknowledged (201, events delivered) that never reached the
    replica are gone after the failover, so the room's ``seq`` goes back. Sockets that saw those events
    must still receive the new master's next events (not drop them as already seen) and its state."""
    servers = make_redis_sentinel()
    roomd = spawn_roomd(**_sentinel_env(servers, REDIS_COMMAND_TIMEOUT="1000", REDIS_CONNECT_TIMEOUT="1000"))
    api = Api(roomd.http)
    host = await api.create("Ana")
    code = host["roomCode"]
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    master, replica = servers.master(), next(n for n in servers.data if n.port != servers.master_port())
    assert replica.process is not None
    replica.process.send_signal(signal.SIGSTOP)  # the replica stops reading ...
    try:
        with master.client() as direct:
            direct.client_kill_filter(_type="replica")  # ... and the master stops sending: later writes stay local
        lost = [await api.join(code, f"Lost{i}") for i in range(2)]  # acknowledged: 201
        for member in lost:
            assert (await hs.expect("user:joined"))["user"]["id"] == member["userId"]
        master.kill()
    finally:
        replica.process.send_signal(signal.SIGCONT)
    await asyncio.to_thread(servers.wait_failover, master.port)
    state = await hs.expect("room:state", timeout=6)  # the bus reconnected to the new master: resync
    assert {u["displayName"] for u in state["users"]} == {"Ana"}  # what the new master has: the joins are lost
    after = await api.join(code, "After")
    assert (await hs.expect("user:joined", timeout=5))["user"]["id"] == after["userId"]
