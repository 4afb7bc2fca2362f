"""Several roomd processes on one Redis, dead-peer detection, and room expiry."""

from __future__ import annotations

from roomd.domain.keys import expiry_key
from tests.support.clients import Api, Socket, inert_websocket
from tests.support.processes import RoomdProcess
from tests.support.schedule import entries_of


async def test_two_processes_share_rooms_and_events(spawn_roomd, redis_client) -> None:
    a: RoomdProcess = spawn_roomd()
    b: RoomdProcess = spawn_roomd()
    host = await Api(a.http).create("Ana")
    player = await Api(b.http).join(host["roomCode"], "Bob")  # joined through the other process
    hs = await Socket.connect(a.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(b.ws, player["token"])
    state = await ps.expect("room:state")
    assert [u["displayName"] for u in state["users"]] == ["Ana", "Bob"]
    assert (await hs.expect("user:connected"))["user"]["id"] == player["userId"]
    # A host action on A reaches the member on B, in order.
    await hs.send("room:toggle_lock")
    await hs.send("room:transfer_host", {"newHostId": player["userId"]})
    assert await ps.expect("room:lock_toggled") == {"isLocked": True}
    assert await ps.expect("room:host_updated") == {"hostId": player["userId"], "reason": "TRANSFERRED"}
    # The new host on B kicks the member on A: user:kicked and 4403 cross processes.
    await ps.send("room:kick", {"kickUserId": host["userId"]})
    assert (await hs.expect("user:kicked"))["userId"] == host["userId"]
    assert await hs.closed() == 4403


async def test_second_connection_on_another_process_replaces_the_first(spawn_roomd) -> None:
    a, b = spawn_roomd(), spawn_roomd()
    host = await Api(a.http).create("Ana")
    first = await Socket.connect(a.ws, host["token"])
    await first.expect("room:state")
    second = await Socket.connect(b.ws, host["token"])
    await second.expect("room:state")
    assert await first.closed() == 4409


async def test_close_on_one_process_closes_sockets_on_both(spawn_roomd) -> None:
    a, b = spawn_roomd(), spawn_roomd()
    host = await Api(a.http).create("Ana")
    players = [await Api(b.http).join(host["roomCode"], f"P{i}") for i in range(3)]
    hs = await Socket.connect(a.ws, host["token"])
    await hs.expect("room:state")
    sockets = []
    for i, p in enumerate(players):
        s = await Socket.connect((a if i % 2 else b).ws, p["token"])
        await s.expect("room:state")
        sockets.append(s)
    await hs.send("room:close")
    for s in [hs, *sockets]:
        assert await s.expect("room:closed") == {"reason": "HOST_CLOSED"}
        assert await s.closed() == 4410


async def test_pings_detect_dead_peers(spawn_roomd) -> None:
    server: RoomdProcess = spawn_roomd(WS_PING_INTERVAL="0.3")
    host = await Api(server.http).create("Ana")
    player = await Api(server.http).join(host["roomCode"], "Bob")
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    dead = inert_websocket(server.port, player["token"])
    try:
        assert (await hs.expect("user:connected"))["user"]["id"] == player["userId"]
        gone = await hs.expect("user:disconnected", timeout=10)
        assert gone["user"]["id"] == player["userId"]
    finally:
        dead.close()


async def test_expiry_closes_live_sockets(spawn_roomd, redis_client) -> None:
    server: RoomdProcess = spawn_roomd(ROOM_TTL_SECONDS="2")
    host = await Api(server.http).create("Ana")
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    assert await hs.expect("room:closed", timeout=10) == {"reason": "EXPIRED"}
    assert await hs.closed() == 4410
    assert (await Api(server.http).room(host["roomCode"])).status == 404
    assert await entries_of(redis_client, expiry_key(), host["roomCode"]) == []
