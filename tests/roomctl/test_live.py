"""roomctl, run as the installed console script, reaches connected players live."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.support.clients import Api, Socket
from tests.support.processes import RedisServer, RoomdProcess

ROOMCTL = str(Path(sys.executable).with_name("roomctl"))


async def roomctl(redis: RedisServer, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        ROOMCTL, "--redis-url", redis.url, *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode()


async def test_admin_close_reaches_members_on_every_instance(redis_server, spawn_roomd, api: Api, roomd) -> None:
    other: RoomdProcess = spawn_roomd()
    host = await api.create("Ana")
    player = await api.join(host["roomCode"], "Bob")
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(other.ws, player["token"])  # on another roomd process
    await ps.expect("room:state")
    code, out = await roomctl(redis_server, "rooms", "close", host["roomCode"].lower(), "--yes")
    assert code == 0, out
    for s in (hs, ps):
        assert await s.expect("room:closed") == {"reason": "ADMIN_CLOSED"}
        assert await s.closed() == 4410
    assert (await api.rejoin(host["roomCode"], player["token"])).status == 404


async def test_admin_kick_is_a_host_kick(redis_server, api: Api, roomd) -> None:
    host = await api.create("Ana")
    player = await api.join(host["roomCode"], "Bob")
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(roomd.ws, player["token"])
    await ps.expect("room:state")
    await hs.expect("user:connected")
    code, out = await roomctl(redis_server, "--json", "users", "kick", host["roomCode"], host["userId"], "--yes")
    assert code == 0, out
    assert json.loads(out)["newHostId"] == player["userId"]
    assert await hs.expect("user:kicked") == {"userId": host["userId"], "by": "ADMIN"}
    assert await hs.closed() == 4403
    assert await ps.expect("user:left") == {"userId": host["userId"], "reason": "KICKED"}
    assert await ps.expect("room:host_updated") == {"hostId": player["userId"]}


async def test_admin_lock_and_unlock_broadcast(redis_server, api: Api, roomd) -> None:
    host = await api.create("Ana")
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    assert (await roomctl(redis_server, "rooms", "lock", host["roomCode"]))[0] == 0
    assert await hs.expect("room:lock_toggled") == {"isLocked": True}
    assert (await roomctl(redis_server, "rooms", "unlock", host["roomCode"]))[0] == 0
    assert await hs.expect("room:lock_toggled") == {"isLocked": False}
