"""roomctl, run as the installed console script, reaches connected players live (on every roomd instance)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.roomctl.conftest import CLEAN_ENV
from tests.support.clients import Api, Socket, http
from tests.support.processes import RedisServer, RoomdProcess

ROOMCTL = str(Path(sys.executable).with_name("roomctl"))
# As a sysadmin's shell: no Redis/room variables of the caller, and Python's usual block-buffered pipes
# (so the events tests prove that each line is flushed as it happens).
ENV = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV and k != "PYTHONUNBUFFERED"}


async def roomctl(redis: RedisServer, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        ROOMCTL, "--env-file", "", "--redis-url", redis.url, *args, env=ENV,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@contextlib.asynccontextmanager
async def following(redis: RedisServer, code: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``roomctl events CODE --json`` as a process, yielded once it is subscribed; killed if still running."""
    proc = await asyncio.create_subprocess_exec(
        ROOMCTL, "--env-file", "", "--redis-url", redis.url, "events", code, "--json", env=ENV,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        note = await asyncio.wait_for(proc.stderr.readline(), 30)  # written once subscribed
        assert note.decode().startswith(f"following room {code.upper()}"), note
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def next_event(proc: asyncio.subprocess.Process) -> dict:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 10)  # arrives while roomctl still runs: flushed
    return json.loads(line)


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
    assert (await api.rejoin(host["roomCode"], player["token"])).status == 404  # tokens died with the room
    assert (await api.room(host["roomCode"])).status == 404


async def test_admin_kick_is_a_host_kick(redis_server, api: Api, roomd) -> None:
    host = await api.create("Ana")
    player = await api.join(host["roomCode"], "Bob")
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(roomd.ws, player["token"])
    await ps.expect("room:state")
    await hs.expect("user:connected")
    code, out = await roomctl(redis_server, "--json", "users", "kick", host["roomCode"], "--yes", "--", host["userId"])
    assert code == 0, out
    assert json.loads(out)["newHostId"] == player["userId"]
    assert await hs.expect("user:kicked") == {"userId": host["userId"], "by": "ADMIN"}
    assert await hs.closed() == 4403
    assert await ps.expect("user:left") == {"userId": host["userId"], "reason": "KICKED"}
    assert await ps.expect("room:host_updated") == {"hostId": player["userId"], "reason": "HOST_KICKED"}
    assert (await api.rejoin(host["roomCode"], host["token"])).status == 404  # the kicked token is dead


async def test_admin_lock_and_unlock_broadcast(redis_server, api: Api, roomd) -> None:
    host = await api.create("Ana")
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    assert (await roomctl(redis_server, "rooms", "lock", host["roomCode"]))[0] == 0
    assert await hs.expect("room:lock_toggled") == {"isLocked": True}
    late = await http(roomd.http, "POST", f"/rooms/{host['roomCode']}/join", {"displayName": "Late"})
    assert (late.status, late.body["code"]) == (400, "ROOM_LOCKED")  # protocol/codes.json
    assert (await roomctl(redis_server, "rooms", "unlock", host["roomCode"]))[0] == 0
    assert await hs.expect("room:lock_toggled") == {"isLocked": False}


async def test_events_shows_what_members_receive_until_ctrl_c(redis_server, api: Api, roomd) -> None:
    host = await api.create("Ana")
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    async with following(redis_server, host["roomCode"].lower()) as proc:
        await hs.send("room:toggle_lock")  # a host action through roomd
        received = await hs.expect("room:lock_toggled")
        event = await next_event(proc)
        assert (event["event"], event["data"]) == ("room:lock_toggled", received)
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_events_ends_when_the_room_closes(redis_server, api: Api, roomd) -> None:
    host = await api.create("Ana")
    async with following(redis_server, host["roomCode"]) as proc:
        assert (await roomctl(redis_server, "rooms", "close", host["roomCode"], "--yes"))[0] == 0
        event = await next_event(proc)
        assert (event["event"], event["data"]) == ("room:closed", {"reason": "ADMIN_CLOSED"})
        assert await asyncio.wait_for(proc.wait(), 10) == 0  # no Ctrl-C needed


async def test_admin_transfer_host_reaches_members(redis_server, api: Api, roomd) -> None:
    host = await api.create("Ana")
    player = await api.join(host["roomCode"], "Bob")
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(roomd.ws, player["token"])
    await ps.expect("room:state")
    code, out = await roomctl(redis_server, "rooms", "transfer-host", host["roomCode"], "--", player["userId"])
    assert code == 0, out
    for s in (hs, ps):
        assert await s.expect("room:host_updated") == {"hostId": player["userId"], "reason": "TRANSFERRED"}
    await ps.send("room:toggle_lock")  # the new host can act as host at once
    assert await hs.expect("room:lock_toggled") == {"isLocked": True}
