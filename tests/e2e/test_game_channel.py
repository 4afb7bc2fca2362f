"""The game channel end to end: game messages, acks, shared state and its visibility.

Members of a room are spread over two roomd processes wherever delivery matters:
sender and recipient on different processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.e2e.game_support import connect, game_messages, mark, reconnect, room
from tests.support.clients import Api, Socket
from tests.support.processes import RoomdProcess

FAST = {"WS_RATE_LIMIT": "1000", "WS_RATE_BURST": "1000"}


@pytest.fixture
def two(spawn_roomd: Callable[..., RoomdProcess]) -> list[RoomdProcess]:
    return [spawn_roomd(**FAST), spawn_roomd(**FAST)]


# -- game:send -------------------------------------------------------------------


async def test_who_may_send_to_whom(two: list[RoomdProcess]) -> None:
    """Host to anyone; players to the host only, unless playerMessages is "all"."""
    api = Api(two[0].http)
    _, (host, p1, p2) = await room(api, two, ["Host", "P1", "P2"])
    everyone = [host, p1, p2]
    # (sender, to, who receives it) in a room with the default playerMessages "host"
    allowed = [
        (host, "host", {host.id}),
        (host, "all", {host.id, p1.id, p2.id}),
        (host, "others", {p1.id, p2.id}),
        (host, [p2.id], {p2.id}),
        (host, [p1.id, p2.id], {p1.id, p2.id}),
        (p1, "host", {host.id}),
    ]
    for n, (sender, to, receivers) in enumerate(allowed):
        seq = await sender.do("game:send", {"to": to, "type": "t", "data": {"n": n}})
        seen = await mark(host, everyone, f"a{n}")
        for m in everyone:
            got = [f for f in seen[m.id] if f["event"] == "game:message" and f["data"]["type"] == "t"]
            if m.id in receivers:
                expected = {"from": sender.id, "type": "t", "data": {"n": n}}
                assert [(f["data"], f["seq"]) for f in got] == [(expected, seq)]
            else:
                assert got == [], (n, m.id)
    for n, to in enumerate(["all", "others", [p2.id], [host.id]]):
        await p1.fails("game:send", {"to": to, "type": "t", "data": n}, "NOT_ALLOWED")
    seen = await mark(host, everyone, "refused")
    assert all(game_messages(seen[m.id]) == [(host.id, "marker", "refused")] for m in everyone)

    _, (host, p1, p2) = await room(api, two, ["Host", "P1", "P2"], playerMessages="all")
    everyone = [host, p1, p2]
    for n, (to, receivers) in enumerate([("all", {host.id, p1.id, p2.id}), ("others", {host.id, p2.id}),
                                         ([p2.id], {p2.id})]):  # fmt: skip
        await p1.do("game:send", {"to": to, "type": "chat", "data": f"hi {n}"})
        seen = await mark(host, everyone, f"chat{n}")
        for m in everyone:
            got = [msg for msg in game_messages(seen[m.id]) if msg[1] == "chat"]
            assert got == ([(p1.id, "chat", f"hi {n}")] if m.id in receivers else []), (n, m.id)


async def test_unknown_recipient_sends_nothing(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    _, (host, p1) = await room(api, two, ["Host", "P1"])
    _other_code, (stranger,) = await room(api, two, ["Elsewhere"])
    for to in ([p1.id, "nobody"], [stranger.id]):
        await host.fails("game:send", {"to": to, "type": "secret", "data": 1}, "MEMBER_NOT_FOUND")
    seen = await mark(host, [host, p1], "after")
    assert game_messages(seen[p1.id]) == [(host.id, "marker", "after")]
    assert await stranger.sock.silent(0.1)


async def test_message_size_limit_and_defaults(spawn_roomd: Callable[..., RoomdProcess]) -> None:
    server = spawn_roomd(GAME_MESSAGE_MAX_BYTES="64")
    _, (host, p1) = await room(Api(server.http), [server], ["Host", "P1"])
    error = await p1.fails("game:send", {"type": "big", "data": "x" * 63}, "MESSAGE_TOO_LARGE")  # 65 bytes encoded
    assert "64" in error["message"]
    await p1.do("game:send", {"type": "fits", "data": "x" * 62})  # exactly 64 bytes: to the host by default
    await p1.do("game:send", {"type": "nothing"})  # data defaults to null
    frames = await host.until("game:message", type="nothing")
    assert game_messages(frames) == [(p1.id, "fits", "x" * 62), (p1.id, "nothing", None)]
    for bad in ({"type": "has space", "data": 1}, {"type": "x" * 65}, {"to": "everyone", "type": "t"},
                {"to": [], "type": "t"}, {"type": "t", "extra": 1}):  # fmt: skip
        await p1.fails("game:send", bad, "INVALID_MESSAGE")


async def test_data_is_relayed_verbatim(two: list[RoomdProcess]) -> None:
    """Numbers beyond double precision, unicode, nesting: exactly what was sent."""
    _, (host, p1) = await room(Api(two[0].http), two, ["Host", "P1"])
    data = {"big": 12345678901234567890, "pi": 3.141592653589793, "s": 'Zoë 🎲 "q" \\', "l": [None, True, {}]}
    await p1.sock.conn.write_message(json.dumps({"event": "game:send", "data": {"type": "t", "data": data}}))
    frame = (await host.until("game:message"))[-1]
    assert frame["data"]["data"] == data
    await host.do("state:set", {"key": "k", "value": data})
    assert p1.state == {} and (await p1.until("state:changed"))[-1]["data"]["value"] == data


# -- acks ---------------------------------------------------------------------------


async def test_every_client_event_is_acknowledged_after_its_effect(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    _, (host, p1, p2, p3) = await room(api, two, ["Host", "P1", "P2", "P3"])
    # room:toggle_lock: the host gets room:lock_toggled (seq n) before ack {seq: n}
    msg_id = await host.send("room:toggle_lock")
    ack = await host.reply(msg_id)
    lock = [f for f in host.frames if f["event"] == "room:lock_toggled"][-1]
    assert ack["data"] == {"id": msg_id, "seq": lock["seq"]} and host.frames.index(lock) < host.frames.index(ack)
    seq = await host.do("room:transfer_host", {"newHostId": p1.id})
    assert (await p2.until("room:host_updated"))[-1]["seq"] == seq
    seq = await p1.do("room:kick", {"kickUserId": p2.id})
    assert await p2.sock.closed() == 4403
    seq = await p1.do("state:set", {"key": "k", "value": 1})
    assert (await p3.until("state:changed"))[-1]["seq"] == seq
    assert await p1.do("state:delete", {"key": "k"}) == seq + 1
    # The ack of room:leave comes before the close (1000).
    msg_id = await p3.send("room:leave")
    assert (await p3.reply(msg_id))["data"]["id"] == msg_id
    assert await p3.sock.closed() == 1000
    # ...and that of room:close before 4410; an integer id is echoed as an integer.
    await p1.sock.send("room:close", msg_id=7)
    assert (await p1.reply(7))["data"]["id"] == 7  # type: ignore[arg-type]
    assert await p1.sock.closed() == 4410
    assert (await host.until("room:closed"))[-1]["data"] == {"reason": "HOST_CLOSED"}


async def test_frames_without_id_get_no_ack_and_errors_keep_order(two: list[RoomdProcess]) -> None:
    _, (host, _p1) = await room(Api(two[0].http), two, ["Host", "P1"])
    await host.sock.send("game:send", {"to": "all", "type": "no-id"})
    await host.sock.send("state:set", {"key": "k", "value": 1}, msg_id="a")
    await host.sock.send("state:set", {"key": "k", "value": 2, "ifVersion": 1}, msg_id="b")  # conflicts
    await host.sock.send("state:set", {"key": "k", "value": 3}, msg_id="c")
    replies = []
    while len(replies) < 3:
        frame = await host.next()
        if frame["event"] in ("ack", "error:room"):
            replies.append((frame["event"], frame["data"]["id"]))
    assert replies == [("ack", "a"), ("error:room", "b"), ("ack", "c")]
    assert host.state["k"]["value"] == 3
    assert not [f for f in host.frames if f["event"] == "ack" and f["data"]["id"] not in ("a", "c")]


# -- shared state ---------------------------------------------------------------------


async def test_private_entries_never_reach_other_players(two: list[RoomdProcess]) -> None:
    """Not in events, not in room:state, not in a replay (sender and phones on different processes)."""
    api = Api(two[0].http)
    _, (host, p1, p2) = await room(api, [two[0], two[1], two[1]], ["TV", "P1", "P2"])
    everyone = [host, p1, p2]
    await host.do("state:set", {"key": "prompt:p1", "value": "SECRET-ONE", "visibleTo": [p1.id]})
    await host.do("state:set", {"key": "prompt:p2", "value": "SECRET-TWO", "visibleTo": [p2.id]})
    await host.do("state:set", {"key": "answers", "value": "HOST-ONLY", "visibleTo": "host"})
    await host.do("state:set", {"key": "round", "value": 1})
    await mark(host, everyone, "set")
    assert host.state.keys() == {"prompt:p1", "prompt:p2", "answers", "round"}
    assert p1.state.keys() == {"prompt:p1", "round"} and p1.state["prompt:p1"]["value"] == "SECRET-ONE"
    assert p2.state.keys() == {"prompt:p2", "round"}
    assert "SECRET-TWO" not in p1.wire_text() and "HOST-ONLY" not in p1.wire_text()
    # A reload: room:state holds exactly what this member may read.
    p1.sock.close()
    p1 = await connect(two[0].ws, p1.membership)
    assert p1.frames[0]["data"]["state"].keys() == {"prompt:p1", "round"}
    # A replay: p2 drops; private changes of p1 happen meanwhile; p2 resumes with since.
    p2.sock.close()
    await host.until("user:disconnected")
    await host.do("state:set", {"key": "prompt:p1", "value": "SECRET-THREE"})
    await host.do("game:send", {"to": [p1.id], "type": "whisper", "data": "PSST"})
    await host.do("state:set", {"key": "round", "value": 2})
    p2 = await reconnect(two[1].ws, p2, since=p2.seq)
    assert p2.frames[0]["event"] == "room:resumed"
    seen = await mark(host, [host, p1, p2], "after")
    game = [f["event"] for f in seen[p2.id] if not f["event"].startswith("user:")]  # p1's reload is there too
    assert game == ["state:changed", "game:message"]  # round 2, the marker
    assert p2.state["round"]["value"] == 2 and p2.state.keys() == {"prompt:p2", "round"}
    assert all(secret not in p2.wire_text() for secret in ("SECRET-ONE", "SECRET-THREE", "PSST", "HOST-ONLY"))
    assert p1.state["prompt:p1"]["value"] == "SECRET-THREE" and (host.id, "whisper", "PSST") in p1.messages


async def test_writable_slots_and_permissions(two: list[RoomdProcess]) -> None:
    _, (host, p1, p2) = await room(Api(two[0].http), two, ["Host", "P1", "P2"])
    slot = {"key": "answer:p1", "value": None, "visibleTo": [p1.id], "writableBy": [p1.id]}
    version = await host.do("state:set", slot)
    assert await p1.do("state:set", {"key": "answer:p1", "value": "mine", "ifVersion": version}) > version
    await p2.fails("state:set", {"key": "answer:p1", "value": "theirs"}, "NOT_ALLOWED")
    await p1.fails("state:set", {"key": "answer:p1", "value": "x", "visibleTo": "all"}, "NOT_ALLOWED")
    await p1.fails("state:set", {"key": "new", "value": 1}, "NOT_ALLOWED")  # only the host creates
    await p1.fails("state:delete", {"key": "answer:p1"}, "NOT_ALLOWED")
    await host.fails("state:set", {"key": "x", "value": 1, "visibleTo": ["ghost"]}, "MEMBER_NOT_FOUND")
    await host.do("state:set", {"key": "board", "value": [], "writableBy": "all"})
    await p2.do("state:set", {"key": "board", "value": ["p2"]})
    seen = await mark(host, [host, p1, p2], "done")
    changed = [f["data"] for f in seen[host.id] if f["event"] == "state:changed"]
    assert [(d["key"], d["value"], d["by"]) for d in changed] == [
        ("answer:p1", None, host.id), ("answer:p1", "mine", p1.id), ("board", [], host.id), ("board", ["p2"], p2.id)
    ]  # fmt: skip
    assert p2.state == {"board": host.state["board"]} and host.state["answer:p1"]["value"] == "mine"
    # Hiding an entry from members who could read it tells them to drop it.
    await host.do("state:set", {"key": "board", "value": ["p2"], "visibleTo": [p1.id]})
    seen = await mark(host, [host, p1, p2], "hidden")
    assert [f["event"] for f in seen[p2.id]] == ["state:deleted", "game:message"] and p2.state == {}
    assert p1.state["board"] == host.state["board"]


async def test_version_conflicts(two: list[RoomdProcess]) -> None:
    _, (host, p1) = await room(Api(two[0].http), two, ["Host", "P1"])
    v1 = await host.do("state:set", {"key": "k", "value": 1, "ifVersion": 0})
    error = await host.fails("state:set", {"key": "k", "value": 2, "ifVersion": 0}, "VERSION_CONFLICT")
    assert error["version"] == v1
    error = await host.fails("state:delete", {"key": "k", "ifVersion": v1 + 100}, "VERSION_CONFLICT")
    assert error["version"] == v1
    v2 = await host.do("state:set", {"key": "k", "value": 2, "ifVersion": v1})
    await host.do("state:delete", {"key": "k", "ifVersion": v2})
    error = await host.fails("state:set", {"key": "k", "value": 3, "ifVersion": v2}, "VERSION_CONFLICT")
    assert error["version"] == 0
    await host.do("state:delete", {"key": "k"})  # deleting a missing entry changes nothing
    seen = await mark(host, [host, p1], "end")
    assert [f["event"] for f in seen[p1.id]] == ["state:changed", "state:changed", "state:deleted", "game:message"]


async def test_state_limits(spawn_roomd: Callable[..., RoomdProcess], redis_client) -> None:
    server = spawn_roomd(ROOM_STATE_MAX_KEYS="2", ROOM_STATE_MAX_BYTES="20")
    _code, (host, p1) = await room(Api(server.http), [server], ["Host", "P1"])
    await host.do("state:set", {"key": "a", "value": "x" * 8})  # 10 bytes
    await host.do("state:set", {"key": "b", "value": 1})  # 11
    await host.fails("state:set", {"key": "c", "value": 1}, "STATE_TOO_LARGE")  # a third key
    await host.fails("state:set", {"key": "a", "value": "x" * 18}, "STATE_TOO_LARGE")  # 20 + 1 bytes
    await host.do("state:set", {"key": "a", "value": "x" * 17})  # 19 + 1 = 20: fits
    await host.do("state:delete", {"key": "b"})
    await host.do("state:set", {"key": "c", "value": 0})
    seen = await mark(host, [host, p1], "end")
    assert p1.state.keys() == {"a", "c"} and len([f for f in seen[p1.id] if f["event"] == "state:changed"]) == 4


async def test_room_state_and_options_in_http(api: Api, roomd: RoomdProcess) -> None:
    host = await api.create("Ana", playerMessages="all", hostMigration="disconnect")
    body = (await api.room(host["roomCode"])).body
    assert (body["playerMessages"], body["hostMigration"]) == ("all", "disconnect")
    plain = await api.create("Bo")
    body = (await api.room(plain["roomCode"])).body
    assert (body["playerMessages"], body["hostMigration"]) == ("host", "leave")
    member = await connect(roomd.ws, host)
    first = member.frames[0]
    assert first["data"]["state"] == {} and first["seq"] >= 1
    assert first["data"]["room"]["playerMessages"] == "all"


async def test_kicked_member_stops_receiving(two: list[RoomdProcess]) -> None:
    _, (host, p1, p2) = await room(Api(two[0].http), two, ["Host", "P1", "P2"])
    await host.do("state:set", {"key": "secret", "value": "BEFORE", "visibleTo": [p1.id, p2.id]})
    await host.do("room:kick", {"kickUserId": p1.id})
    await host.do("state:set", {"key": "secret", "value": "AFTER-KICK"})
    await host.do("game:send", {"to": "all", "type": "news", "data": "AFTER-KICK"})
    await mark(host, [host, p2], "end")
    frames = await p1.until("user:kicked")
    assert frames[-1]["data"] == {"userId": p1.id, "by": "HOST"}
    assert await p1.sock.closed() == 4403
    assert "AFTER-KICK" not in p1.wire_text() and p2.state["secret"]["value"] == "AFTER-KICK"
    # The kicked token is dead: no room:state, no replay.
    again = await Socket.connect(two[1].ws + "?since=0", p1.token)
    assert (await again.expect("error:room"))["code"] == "MEMBER_NOT_FOUND"


async def test_a_host_kicked_right_after_a_transfer_learns_why(two: list[RoomdProcess]) -> None:
    """The old host re-reads a snapshot after the transfer; a kick meanwhile still says user:kicked, 4403."""
    api = Api(two[0].http)
    for _ in range(6):
        _, (host, p1) = await room(api, two, ["Host", "P1"])
        await host.sock.send("room:transfer_host", {"newHostId": p1.id})
        await p1.until("room:host_updated")
        await p1.sock.send("room:kick", {"kickUserId": host.id})
        frames = await host.until("user:kicked")
        assert frames[-1]["data"] == {"userId": host.id, "by": "HOST"}
        assert await host.sock.closed() == 4403
