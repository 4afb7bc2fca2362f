"""The WebSocket event protocol over real sockets against a real roomd process.

Every frame received is validated against its schema in protocol/ by the
test client (tests/support/clients.py).
"""

from __future__ import annotations

import json
import time

import jwt
import pytest

from roomd.domain.keys import room_key, users_key
from tests.support.clients import Api, Socket
from tests.support.processes import TEST_SECRET, RoomdProcess


async def joined(api: Api, roomd: RoomdProcess, names: list[str]) -> tuple[list[dict], list[Socket]]:
    """A room with ``names`` (first is host), everyone connected; returns memberships and sockets."""
    host = await api.create(names[0])
    members = [host] + [await api.join(host["roomCode"], n) for n in names[1:]]
    sockets = []
    for m in members:
        s = await Socket.connect(roomd.ws, m["token"])
        await s.expect("room:state")
        sockets.append(s)
    for i, s in enumerate(sockets):  # drain the user:connected of later members
        for _ in range(len(sockets) - 1 - i):
            await s.expect("user:connected")
    return members, sockets


async def test_connect_sends_state_first_and_announces(api: Api, roomd: RoomdProcess) -> None:
    host = await api.create("Ana")
    player = await api.join(host["roomCode"], "Bob")
    hs = await Socket.connect(roomd.ws, host["token"])
    first = await hs.next_event()
    assert first["event"] == "room:state"
    assert first["data"]["room"]["code"] == host["roomCode"]
    assert first["data"]["users"] == [
        {"id": host["userId"], "displayName": "Ana", "isConnected": True, "isHost": True},
        {"id": player["userId"], "displayName": "Bob", "isConnected": False, "isHost": False},
    ]
    ps = await Socket.connect(roomd.ws, player["token"], query=True)  # browsers use ?token=
    assert (await ps.next_event())["event"] == "room:state"
    connected = await hs.expect("user:connected")
    assert connected["user"] == {"id": player["userId"], "displayName": "Bob", "isConnected": True, "isHost": False}
    assert await ps.silent(0.2)  # no echo of one's own connection


async def test_user_joined_is_broadcast(api: Api, roomd: RoomdProcess) -> None:
    (host,), (hs,) = await joined(api, roomd, ["Ana"])
    player = await api.join(host["roomCode"], "Bob")
    assert (await hs.expect("user:joined"))["user"]["id"] == player["userId"]


def _token(claims: dict, key: str | None = TEST_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, alg)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "garbage",
        _token({"roomCode": "ABCD", "userId": "u", "exp": 9999999999}, "wrong-key" * 5),
        _token({"roomCode": "ABCD", "userId": "u", "exp": int(time.time()) - 5}),
        _token({"roomCode": "ABCD", "userId": "u", "exp": 9999999999}, None, "none"),
    ],
)
async def test_bad_tokens_close_4401(roomd: RoomdProcess, token: str | None) -> None:
    s = await Socket.connect(roomd.ws, token)
    error = await s.expect("error:room")
    assert error["code"] == "UNAUTHORIZED"
    assert await s.closed() == 4401


async def test_room_gone_or_not_member_closes_4404(api: Api, roomd: RoomdProcess, store) -> None:
    members, sockets = await joined(api, roomd, ["Ana", "Bob"])
    host, _player = members
    ghost = _token({"roomCode": host["roomCode"], "userId": "not-a-member", "exp": 9999999999})
    s = await Socket.connect(roomd.ws, ghost)
    assert (await s.expect("error:room"))["code"] == "MEMBER_NOT_FOUND"
    assert await s.closed() == 4404
    await sockets[0].send("room:close")
    await sockets[0].expect("room:closed")
    s = await Socket.connect(roomd.ws, host["token"])
    assert (await s.expect("error:room"))["code"] == "ROOM_NOT_FOUND"
    assert await s.closed() == 4404


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "INVALID_MESSAGE"),
        ("[1, 2]", "INVALID_MESSAGE"),
        ('{"data": {}}', "INVALID_MESSAGE"),
        ('{"event": 5}', "INVALID_MESSAGE"),
        ('{"event": "room:kick"}', "INVALID_MESSAGE"),
        ('{"event": "room:kick", "data": {"kickUserId": 5}}', "INVALID_MESSAGE"),
        ('{"event": "room:kick", "data": {"kickUserId": "x", "extra": 1}}', "INVALID_MESSAGE"),
        ('{"event": "room:leave", "data": {}, "junk": true}', "INVALID_MESSAGE"),
        ('{"event": "room:dance", "data": {}}', "UNKNOWN_EVENT"),
    ],
)
async def test_bad_frames_get_errors_and_the_socket_stays_open(api: Api, roomd: RoomdProcess, raw: str, code: str):
    (_host,), (hs,) = await joined(api, roomd, ["Ana"])
    await hs.send_raw(raw)
    assert (await hs.expect("error:room"))["code"] == code
    await hs.send("room:toggle_lock")  # still open and working
    assert await hs.expect("room:lock_toggled") == {"isLocked": True}


async def test_binary_frames_are_invalid(api: Api, roomd: RoomdProcess) -> None:
    (host,), (hs,) = await joined(api, roomd, ["Ana"])
    await hs.send_raw(b'{"event": "room:toggle_lock"}', binary=True)
    assert (await hs.expect("error:room"))["code"] == "INVALID_MESSAGE"
    assert (await api.room(host["roomCode"])).body["isLocked"] is False


async def test_errors_echo_id_and_event(api: Api, roomd: RoomdProcess) -> None:
    _, (_hs, ps) = await joined(api, roomd, ["Ana", "Bob"])
    await ps.send("room:toggle_lock", msg_id="req-7")
    assert await ps.expect("error:room") == {
        "code": "NOT_HOST",
        "message": "Only the host may do this.",
        "id": "req-7",
        "event": "room:toggle_lock",
    }
    await ps.send("room:dance", msg_id=42)
    error = await ps.expect("error:room")
    assert (error["code"], error["id"], error["event"]) == ("UNKNOWN_EVENT", 42, "room:dance")


async def test_oversized_frame_closes_1009(api: Api, roomd: RoomdProcess) -> None:
    (_host,), (hs,) = await joined(api, roomd, ["Ana"])
    await hs.send_raw(json.dumps({"event": "room:leave", "data": {"pad": "x" * 20_000}}))
    assert await hs.closed() == 1009


@pytest.mark.parametrize(
    ("event", "data"),
    [("room:close", None), ("room:toggle_lock", None), ("room:kick", "HOST"), ("room:transfer_host", "SELF")],
)
async def test_non_host_events_are_refused(api: Api, roomd: RoomdProcess, event: str, data: str | None) -> None:
    members, (hs, ps) = await joined(api, roomd, ["Ana", "Bob"])
    host, player = members
    payload = None
    if data == "HOST":
        payload = {"kickUserId": host["userId"]}
    elif data == "SELF":
        payload = {"newHostId": player["userId"]}
    await ps.send(event, payload)
    assert (await ps.expect("error:room"))["code"] == "NOT_HOST"
    room = (await api.room(host["roomCode"])).body
    assert room["hostId"] == host["userId"] and room["isLocked"] is False and room["memberCount"] == 2
    assert await hs.silent(0.2)


async def test_host_event_errors(api: Api, roomd: RoomdProcess) -> None:
    members, (hs, _ps) = await joined(api, roomd, ["Ana", "Bob"])
    host, _ = members
    outsider = await api.create("Zed")
    cases = [
        ("room:kick", {"kickUserId": host["userId"]}, "CANNOT_KICK_SELF"),
        ("room:kick", {"kickUserId": outsider["userId"]}, "MEMBER_NOT_FOUND"),
        ("room:transfer_host", {"newHostId": outsider["userId"]}, "MEMBER_NOT_FOUND"),
        ("room:transfer_host", {"newHostId": host["userId"]}, "ALREADY_HOST"),
    ]
    for event, data, code in cases:
        await hs.send(event, data)
        assert (await hs.expect("error:room"))["code"] == code
    assert (await api.room(outsider["roomCode"])).body["memberCount"] == 1


async def test_toggle_lock_broadcasts_and_blocks_joins(api: Api, roomd: RoomdProcess) -> None:
    members, sockets = await joined(api, roomd, ["Ana", "Bob", "Cy"])
    await sockets[0].send("room:toggle_lock")
    for s in sockets:
        assert await s.expect("room:lock_toggled") == {"isLocked": True}
    r = await api.room(members[0]["roomCode"])
    assert r.body["isLocked"] is True
    from tests.support.clients import http

    late = await http(api.base, "POST", f"/rooms/{members[0]['roomCode']}/join", {"displayName": "Late"})
    assert late.status == 400 and late.body["code"] == "ROOM_LOCKED"
    await sockets[0].send("room:toggle_lock")
    for s in sockets:
        assert await s.expect("room:lock_toggled") == {"isLocked": False}
    await api.join(members[0]["roomCode"], "Late")


async def test_transfer_host(api: Api, roomd: RoomdProcess) -> None:
    members, sockets = await joined(api, roomd, ["Ana", "Bob"])
    await sockets[0].send("room:transfer_host", {"newHostId": members[1]["userId"]})
    for s in sockets:
        assert await s.expect("room:host_updated") == {"hostId": members[1]["userId"], "reason": "TRANSFERRED"}
    await sockets[0].send("room:toggle_lock")
    assert (await sockets[0].expect("error:room"))["code"] == "NOT_HOST"
    await sockets[1].send("room:toggle_lock")
    assert await sockets[0].expect("room:lock_toggled") == {"isLocked": True}


async def test_kick(api: Api, roomd: RoomdProcess) -> None:
    members, (hs, ps, cs) = await joined(api, roomd, ["Ana", "Bob", "Cy"])
    host, player, _ = members
    await hs.send("room:kick", {"kickUserId": player["userId"]})
    assert await ps.expect("user:kicked") == {"userId": player["userId"], "by": "HOST"}
    assert await ps.closed() == 4403
    for s in (hs, cs):
        assert await s.expect("user:left") == {"userId": player["userId"], "reason": "KICKED"}
    assert await hs.silent(0.2)  # no user:disconnected after a kick
    # The kicked token is dead at once.
    assert (await api.rejoin(host["roomCode"], player["token"])).status == 404
    again = await Socket.connect(roomd.ws, player["token"])
    assert (await again.expect("error:room"))["code"] == "MEMBER_NOT_FOUND"
    assert await again.closed() == 4404


async def test_leave(api: Api, roomd: RoomdProcess) -> None:
    members, (hs, ps, cs) = await joined(api, roomd, ["Ana", "Bob", "Cy"])
    host, player, _ = members
    await ps.send("room:leave")
    assert await ps.closed() == 1000
    for s in (hs, cs):
        assert await s.expect("user:left") == {"userId": player["userId"], "reason": "LEFT"}
    assert await hs.silent(0.2)
    assert (await api.rejoin(host["roomCode"], player["token"])).status == 404


async def test_host_leaving_hands_over_deterministically(api: Api, roomd: RoomdProcess) -> None:
    members, (hs, ps, cs) = await joined(api, roomd, ["Ana", "Bob", "Cy"])
    host, player, _third = members
    await hs.send("room:leave")
    assert await hs.closed() == 1000
    for s in (ps, cs):
        assert await s.expect("user:left") == {"userId": host["userId"], "reason": "LEFT"}
        # the longest-standing member
        assert await s.expect("room:host_updated") == {"hostId": player["userId"], "reason": "HOST_LEFT"}
    assert (await api.room(host["roomCode"])).body["hostId"] == player["userId"]


async def test_last_member_leaving_deletes_the_room(api: Api, roomd: RoomdProcess) -> None:
    (host,), (hs,) = await joined(api, roomd, ["Ana"])
    await hs.send("room:leave")
    assert await hs.closed() == 1000
    assert (await api.room(host["roomCode"])).status == 404


async def test_close(api: Api, roomd: RoomdProcess, redis_client) -> None:
    members, sockets = await joined(api, roomd, ["Ana", "Bob", "Cy"])
    code = members[0]["roomCode"]
    await sockets[0].send("room:close")
    for s in sockets:
        assert await s.expect("room:closed") == {"reason": "HOST_CLOSED"}
        assert await s.closed() == 4410
    assert [k async for k in redis_client.scan_iter(f"*{code}*")] == []
    assert not await redis_client.exists(users_key(code))
    for m in members:
        assert (await api.rejoin(code, m["token"])).status == 404
    again = await Socket.connect(roomd.ws, members[1]["token"])
    assert await again.closed() == 4404


async def test_drop_and_reconnect(api: Api, roomd: RoomdProcess) -> None:
    members, (hs, ps) = await joined(api, roomd, ["Ana", "Bob"])
    player = members[1]
    ps.close()
    gone = await hs.expect("user:disconnected")
    assert gone["user"]["id"] == player["userId"] and gone["user"]["isConnected"] is False
    assert (await api.room(player["roomCode"])).body["memberCount"] == 2  # still a member
    back = await Socket.connect(roomd.ws, player["token"])
    state = await back.expect("room:state")
    assert {u["id"]: u["isConnected"] for u in state["users"]}[player["userId"]] is True
    assert (await hs.expect("user:connected"))["user"]["id"] == player["userId"]
    # A fresh token from /rejoin works as well.
    back.close()
    await hs.expect("user:disconnected")
    fresh = (await api.rejoin(player["roomCode"], player["token"])).body["token"]
    again = await Socket.connect(roomd.ws, fresh)
    await again.expect("room:state")
    assert (await hs.expect("user:connected"))["user"]["isConnected"] is True


async def test_second_connection_replaces_the_first(api: Api, roomd: RoomdProcess) -> None:
    members, (hs, ps) = await joined(api, roomd, ["Ana", "Bob"])
    newer = await Socket.connect(roomd.ws, members[1]["token"])
    await newer.expect("room:state")
    assert await ps.closed() == 4409
    assert (await hs.expect("user:connected"))["user"]["id"] == members[1]["userId"]
    assert await hs.silent(0.3)  # neither user:left nor user:disconnected
    await hs.send("room:toggle_lock")
    assert await newer.expect("room:lock_toggled") == {"isLocked": True}


async def test_unexpected_failures_are_unknown_error_without_details(api: Api, roomd: RoomdProcess, redis_client):
    (host,), (hs,) = await joined(api, roomd, ["Ana"])
    await redis_client.set(room_key(host["roomCode"]), "{corrupt", keepttl=True)  # a state no script expects
    await hs.send("room:toggle_lock", msg_id=1)
    error = await hs.expect("error:room")
    assert error == {
        "code": "UNKNOWN_ERROR",
        "message": "An unexpected error occurred; it has been logged.",
        "id": 1,
        "event": "room:toggle_lock",
    }
    await hs.send("room:dance")  # the connection stays usable
    assert (await hs.expect("error:room"))["code"] == "UNKNOWN_EVENT"
    from tests.support.clients import http

    r = await http(api.base, "GET", f"/rooms/{host['roomCode']}")
    assert r.status == 500 and r.body == {
        "statusCode": 500,
        "code": "INTERNAL_ERROR",
        "message": "Something went wrong on the server.",
    }
    assert "Traceback" in roomd.logs()  # the details went to the server log only


async def test_repeated_frames_get_the_same_verdict(api: Api, roomd: RoomdProcess) -> None:
    """Verdicts of small frames are remembered: repeats must behave exactly like the first."""
    _, (hs,) = await joined(api, roomd, ["Ana"])
    for _ in range(2):
        await hs.send_raw('{"event": "room:kick", "data": {"kickUserId": 7}}')
        assert (await hs.expect("error:room"))["code"] == "INVALID_MESSAGE"
    for locked in (True, False, True):
        await hs.send_raw('{"event":"room:toggle_lock"}')
        assert await hs.expect("room:lock_toggled") == {"isLocked": locked}
