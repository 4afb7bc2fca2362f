from tests.support.clients import Api, Socket


async def test_host_and_player_see_each_other(api: Api, roomd) -> None:
    host = await api.create("Ana")
    player = await api.join(host["roomCode"].lower(), "Bob")
    hs = await Socket.connect(roomd.ws, host["token"])
    state = await hs.expect("room:state")
    assert [u["displayName"] for u in state["users"]] == ["Ana", "Bob"]
    ps = await Socket.connect(roomd.ws, player["token"], query=True)
    await ps.expect("room:state")
    connected = await hs.expect("user:connected")
    assert connected["user"]["id"] == player["userId"]
    await hs.send("room:toggle_lock")
    assert (await ps.expect("room:lock_toggled")) == {"isLocked": True}
    assert (await hs.expect("room:lock_toggled")) == {"isLocked": True}
    await hs.send("room:kick", {"kickUserId": player["userId"]})
    assert (await ps.expect("user:kicked"))["userId"] == player["userId"]
    assert await ps.closed() == 4403
    left = await hs.expect("user:left")
    assert left == {"userId": player["userId"], "reason": "KICKED"}
