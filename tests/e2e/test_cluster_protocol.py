"""roomd and roomctl on a Redis Cluster: what the parametrized suites do not cover.

The protocol suites (tests/conftest.py CLUSTER_MODULES) run again with roomd on the session's
3-master cluster; this module adds what needs two roomd processes and roomctl as an operator
runs it (the installed console script with REDIS_CLUSTER_NODES, no REDIS_URL): rooms on every
shard, events between instances, and roomctl's admin commands reaching live sockets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.crc import key_slot

from roomd.domain import keys
from tests.roomctl.conftest import CLEAN_ENV
from tests.support.clients import Api, Socket, http
from tests.support.processes import RoomdProcess
from tests.support.redis_ha import ClusterServers

pytestmark = pytest.mark.cluster
Spawn = Callable[..., RoomdProcess]
ROOMCTL = str(Path(sys.executable).with_name("roomctl"))


def _env(cluster: ClusterServers) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV and k != "PYTHONUNBUFFERED"}
    return {**base, **cluster.env()}


async def _roomctl(cluster: ClusterServers, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        ROOMCTL, "--env-file", "", *args, env=_env(cluster),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_rooms_on_every_shard_across_two_instances(redis_cluster: ClusterServers, spawn_roomd: Spawn) -> None:
    """Rooms land on all three masters; joins, events and roomctl work for each, across instances."""
    env = {**redis_cluster.env(), "REDIS_URL": ""}
    a, b = spawn_roomd(**env), spawn_roomd(**env)
    assert "Redis: Redis Cluster via" in a.logs()
    api_a, api_b = Api(a.http), Api(b.http)
    masters: dict[int, str] = {}
    while len(masters) < 3:
        code = (await api_a.create("Ana"))["roomCode"]
        slot = key_slot(keys.layout().room(code).encode())
        port = (await asyncio.to_thread(redis_cluster.master_of_slot, slot)).port
        masters.setdefault(port, code)
    for code in masters.values():
        player = await api_b.join(code, "Bob")
        ps = await Socket.connect(b.ws, player["token"])
        state = await ps.expect("room:state")
        assert [u["displayName"] for u in state["users"]] == ["Ana", "Bob"]
        code_, out = await _roomctl(redis_cluster, "rooms", "lock", code)  # roomctl -> SPUBLISH -> instance b
        assert code_ == 0, out
        assert await ps.expect("room:lock_toggled") == {"isLocked": True}
        late = await http(a.http, "POST", f"/rooms/{code}/join", {"displayName": "Late"})
        assert (late.status, late.body["code"]) == (400, "ROOM_LOCKED")
        shown_code, shown = await _roomctl(redis_cluster, "rooms", "show", code, "--json")
        assert shown_code == 0 and json.loads(shown)["room"]["isLocked"] is True, shown
    listed_code, listed = await _roomctl(redis_cluster, "--json", "rooms", "list")
    assert listed_code == 0, listed
    assert set(masters.values()) <= {r["code"] for r in json.loads(listed)["rooms"]}


async def test_roomctl_close_and_events_reach_sockets_on_both_instances(
    redis_cluster: ClusterServers, spawn_roomd: Spawn
) -> None:
    env = {**redis_cluster.env(), "REDIS_URL": ""}
    a, b = spawn_roomd(**env), spawn_roomd(**env)
    host = await Api(a.http).create("Ana")
    code = host["roomCode"]
    player = await Api(b.http).join(code, "Bob")
    hs = await Socket.connect(a.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(b.ws, player["token"])
    await ps.expect("room:state")
    await hs.expect("user:connected")
    proc = await asyncio.create_subprocess_exec(
        ROOMCTL, "--env-file", "", "events", code, "--json", env=_env(redis_cluster),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None and proc.stdout is not None
        note = await asyncio.wait_for(proc.stderr.readline(), 30)  # written once subscribed (SSUBSCRIBE)
        assert note.decode().startswith(f"following room {code}"), note
        await hs.send("room:toggle_lock")
        assert await ps.expect("room:lock_toggled") == {"isLocked": True}  # a -> b through the shard
        event = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert (event["event"], event["data"]) == ("room:lock_toggled", {"isLocked": True})
        done, out = await _roomctl(redis_cluster, "rooms", "close", code, "--yes")
        assert done == 0, out
        for sock in (hs, ps):
            assert await sock.expect("room:closed") == {"reason": "ADMIN_CLOSED"}
            assert await sock.closed() == 4410
        closed = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert (closed["event"], closed["data"]) == ("room:closed", {"reason": "ADMIN_CLOSED"})
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
    assert (await Api(a.http).room(code)).status == 404
