"""Process lifecycle: start-up checks, development mode, graceful drain, workers, Redis outages."""

from __future__ import annotations

import asyncio
import http.client as httplib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from roomd.domain.keys import instances_key, room_key, users_key
from tests.support.clients import Api, Socket, http
from tests.support.processes import ROOT, RoomdProcess, free_port


def run_roomd(env: dict[str, str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROOM", "REDIS_", "JWT_"))}
    return subprocess.run(
        [sys.executable, "-m", "roomd", "--env-file", "/nonexistent"],
        env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"ROOM_CODE_LENGTH": "0"}, "ROOM_CODE_LENGTH"),
        ({"ROOM_CODE_ALPHABET": "AABC"}, "ROOM_CODE_ALPHABET"),
        ({"ROOMD_ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0"}, "JWT_SECRET"),
        ({"ROOMD_ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0", "JWT_SECRET": "too-short"}, "JWT_SECRET"),
        ({"ROOMD_ENV": "production", "JWT_SECRET": "x" * 40}, "REDIS_URL"),
    ],
)
def test_bad_configuration_refuses_to_start(env: dict[str, str], needle: str) -> None:
    result = run_roomd(env)
    assert result.returncode == 2
    assert "configuration error" in result.stderr and needle in result.stderr
    assert "Traceback" not in result.stderr
    if "JWT_SECRET" in env:
        assert env["JWT_SECRET"] not in result.stderr


async def test_development_mode_runs_with_zero_config() -> None:
    state = Path(tempfile.mkdtemp(prefix="roomd-dev-"))
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROOM", "REDIS_", "JWT_"))}
    env = {**clean, "PORT": str(port), "HOST": "127.0.0.1", "STATE_DIR": str(state)}
    proc = subprocess.Popen([sys.executable, "-m", "roomd", "--env-file", "/nonexistent"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(200):
            try:
                r = await http(f"http://127.0.0.1:{port}", "POST", "/rooms", {"displayName": "Ana"})
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert r.status == 201 and len(r.body["roomCode"]) == 4
        assert (state / "redis.sock").exists()  # the private Redis, on a unix socket
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "DEVELOPMENT MODE" in out.decode()
    assert not (state / "redis.sock").exists()  # stopped with roomd


def _keepalive_health(port: int) -> Iterator[tuple[int, dict]]:
    """GET /health repeatedly over ONE kept-alive connection (as a load balancer probe would)."""
    conn = httplib.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        while True:
            conn.request("GET", "/health")
            response = conn.getresponse()
            yield response.status, json.loads(response.read())
    finally:
        conn.close()


async def test_sigterm_drains_gracefully(spawn_roomd, redis_client) -> None:
    a: RoomdProcess = spawn_roomd()
    b: RoomdProcess = spawn_roomd()
    host = await Api(a.http).create("Ana")
    player = await Api(a.http).join(host["roomCode"], "Bob")
    hs = await Socket.connect(a.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(a.ws, player["token"])
    await ps.expect("room:state")
    probe = _keepalive_health(a.port)
    assert next(probe)[0] == 200
    a.signal(signal.SIGTERM)
    assert await hs.closed() == 1001 and await ps.closed() == 1001
    status, body = await asyncio.to_thread(next, probe)
    assert status == 503 and body["status"] == "draining"
    probe.close()
    assert await asyncio.to_thread(a.process.wait, 15) == 0
    # Members stay members, marked disconnected; they resume on another instance.
    for member in (host, player):
        user = json.loads(await redis_client.hget(users_key(member["roomCode"]), member["userId"]))
        assert user["isConnected"] is False
    again = await Socket.connect(b.ws, player["token"])
    state = await again.expect("room:state")
    assert {u["id"] for u in state["users"]} == {host["userId"], player["userId"]}


async def test_workers_share_the_port(spawn_roomd, redis_client) -> None:
    port = str(free_port())
    server: RoomdProcess = spawn_roomd(WORKERS="2", PORT=port)
    for _ in range(100):
        instances = await redis_client.zrange(instances_key(), 0, -1)
        if len([i for i in instances if f":{port}:".encode() in i]) == 2:  # host:pid:port:random
            break
        await asyncio.sleep(0.1)
    pids = {i.split(b":")[1] for i in instances if f":{port}:".encode() in i}
    assert len(pids) == 2  # two processes answer on one port
    api = Api(server.http)
    host = await api.create("Ana")
    members = [await api.join(host["roomCode"], f"P{i}") for i in range(6)]
    sockets = []
    for m in members:
        s = await Socket.connect(server.ws, m["token"])
        await s.expect("room:state")
        sockets.append(s)
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    await hs.send("room:toggle_lock")
    for s in sockets:  # wherever each socket landed, the event reaches it
        assert await s.expect("room:lock_toggled") == {"isLocked": True}
    server.signal(signal.SIGTERM)
    for s in [*sockets, hs]:
        assert await s.closed() == 1001
    assert await asyncio.to_thread(server.process.wait, 20) == 0


async def test_redis_pause_gives_fast_503_and_recovers(spawn_roomd, private_redis) -> None:
    private = private_redis()
    server: RoomdProcess = spawn_roomd(private.url, REDIS_COMMAND_TIMEOUT="500")
    api = Api(server.http)
    await api.create("Before")
    private.pause()
    r = await http(server.http, "POST", "/rooms", {"displayName": "During"})
    assert r.status == 503 and r.body["code"] == "REDIS_UNAVAILABLE"
    health = await http(server.http, "GET", "/health")
    assert health.status == 503 and health.body["status"] == "error"
    private.resume()
    for _ in range(50):
        if (await http(server.http, "GET", "/health")).status == 200:
            break
        await asyncio.sleep(0.1)
    await api.create("After")


async def test_redis_restart_under_live_sockets(spawn_roomd, private_redis) -> None:
    private = private_redis(persist=True)
    server: RoomdProcess = spawn_roomd(private.url, REDIS_COMMAND_TIMEOUT="1000")
    api = Api(server.http)
    host = await api.create("Ana")
    player = await api.join(host["roomCode"], "Bob")
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(server.ws, player["token"])
    await ps.expect("room:state")
    await hs.expect("user:connected")
    private.stop()  # saves its data; roomd keeps running
    r = await http(server.http, "GET", f"/rooms/{host['roomCode']}")
    assert r.status == 503 and r.body["code"] == "REDIS_UNAVAILABLE"
    private.start()
    # The bus reconnects, re-subscribes and resends room:state to live sockets.
    state = await ps.expect("room:state", timeout=15)
    assert state["room"]["code"] == host["roomCode"]
    await hs.expect("room:state", timeout=15)
    await hs.send("room:toggle_lock")
    assert await ps.expect("room:lock_toggled") == {"isLocked": True}
    client = redis.Redis(port=private.port)
    assert client.exists(room_key(host["roomCode"]))
    client.close()


async def test_killed_pubsub_connection_is_rebuilt_and_sockets_resynced(spawn_roomd, private_redis) -> None:
    """Redis drops subscribers (client-output-buffer-limit, CLIENT KILL): roomd must not go deaf."""
    private = private_redis()
    server: RoomdProcess = spawn_roomd(private.url)
    api = Api(server.http)
    host = await api.create("Ana")
    player = await api.join(host["roomCode"], "Bob")
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(server.ws, player["token"])
    await ps.expect("room:state")
    client = redis.Redis(port=private.port)
    try:
        assert client.client_kill_filter(_type="pubsub") >= 1
    finally:
        client.close()
    # Events published while the subscriber was gone are lost: the sockets get a fresh room:state.
    assert (await ps.expect("room:state", timeout=10))["room"]["code"] == host["roomCode"]
    await hs.send("room:toggle_lock")
    assert await ps.expect("room:lock_toggled") == {"isLocked": True}
    metrics = (await http(server.http, "GET", "/metrics")).body
    assert "roomd_bus_reconnects_total 1.0" in metrics


async def test_drain_lets_in_flight_requests_finish(spawn_roomd, private_redis) -> None:
    private = private_redis()
    server: RoomdProcess = spawn_roomd(private.url, REDIS_COMMAND_TIMEOUT="2000")
    private.pause()  # the next request will be in flight for up to 2 s
    pending = asyncio.ensure_future(http(server.http, "POST", "/rooms", {"displayName": "Slow"}))
    await asyncio.sleep(0.5)
    server.signal(signal.SIGTERM)
    response = await pending  # answered, not cut off by the shutdown
    assert response.status == 503 and response.body["code"] == "REDIS_UNAVAILABLE"
    private.resume()
    assert await asyncio.to_thread(server.process.wait, 20) == 0
