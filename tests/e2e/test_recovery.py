"""Missed-event recovery: ``?since=`` replays, the history bound, and resynchronisation order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis

from tests.e2e.game_support import Member, connect, mark, reconnect, room
from tests.support.clients import Api
from tests.support.processes import RoomdProcess

FAST = {"WS_RATE_LIMIT": "1000", "WS_RATE_BURST": "1000"}


def burst(host: Member, stayer: Member, dropper: Member, count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` game events of every kind: public and private messages and state changes."""
    events: list[tuple[str, dict[str, Any]]] = []
    for n in range(count):
        kind = n % 6
        if kind == 0:
            events.append(("game:send", {"to": "all", "type": "tick", "data": n}))
        elif kind == 1:
            events.append(("state:set", {"key": "score", "value": {"n": n}}))
        elif kind == 2:
            events.append(
                ("state:set", {"key": f"prompt:{n % 4}", "value": f"PRIVATE-S-{n}", "visibleTo": [stayer.id]})
            )
        elif kind == 3:
            events.append(("state:set", {"key": f"card:{n % 4}", "value": f"PRIVATE-D-{n}", "visibleTo": [dropper.id]}))
        elif kind == 4:
            events.append(("game:send", {"to": [dropper.id], "type": "whisper", "data": f"PRIVATE-D-{n}"}))
        else:
            events.append(("state:delete", {"key": f"prompt:{(n - 3) % 4}"}))
    return events


def expected_messages(events: list[tuple[str, dict[str, Any]]], host: Member, member: Member) -> list[tuple]:
    found = []
    for event, data in events:
        if event == "game:send" and (data["to"] == "all" or member.id in data["to"]):
            found.append((host.id, data["type"], data["data"]))
    return found


def strictly_ordered(member: Member) -> None:
    """No duplicate and no reordering: every room event's seq is above the previous one."""
    last = 0
    for frame in member.frames:
        if "seq" not in frame:
            continue
        if frame["event"] == "room:state":
            assert frame["seq"] >= last, f"an older room:state after seq {last}"
        else:
            assert frame["seq"] > last, f"{frame} after seq {last}"
        last = frame["seq"]


async def test_a_member_dropping_during_a_burst_ends_like_one_that_stayed(
    spawn_roomd: Callable[..., RoomdProcess],
) -> None:
    """The issue's test: 50 events through another process, a member away for a while, nothing lost."""
    a, b = spawn_roomd(**FAST), spawn_roomd(**FAST)
    _, (host, stayer, dropper) = await room(Api(a.http), [a, b, b], ["TV", "Stays", "Drops"])
    events = burst(host, stayer, dropper, 50)
    dropped = asyncio.Event()
    back = asyncio.Event()

    async def send_all() -> None:
        for n, (event, data) in enumerate(events):
            await host.sock.send(event, data, msg_id=f"b{n}")
            await asyncio.sleep(0.01)
            if n == 15:
                await dropped.wait()  # the rest is sent while the member is away...
            if n == 40:
                await back.wait()  # ...and the last ones once it is back: replay, then live

    sender = asyncio.ensure_future(send_all())
    while len(dropper.messages) < 2:  # a few events received live, then the connection drops
        await dropper.next()
    dropper.sock.close()
    dropped.set()
    await asyncio.sleep(0.4)
    first_socket_frames = list(dropper.frames)
    dropper = await reconnect(a.ws, dropper, since=dropper.seq)  # another process than before
    back.set()
    await sender
    assert dropper.frames[0]["event"] == "room:resumed"
    for n in range(len(events)):
        assert (await host.reply(f"b{n}"))["event"] == "ack"
    await mark(host, [host, stayer, dropper], "end")

    for member in (stayer, dropper):
        assert member.messages == [*expected_messages(events, host, member), (host.id, "marker", "end")]
        fresh = await connect(b.ws, member.membership)  # the truth, as a reload would show it
        assert member.state == {k: dict(v) for k, v in fresh.frames[0]["data"]["state"].items()}
        fresh.sock.close()
    assert stayer.state["score"] == dropper.state["score"] == host.state["score"]
    assert "PRIVATE-D" not in stayer.wire_text() and "PRIVATE-S" not in dropper.wire_text()
    assert "PRIVATE-S" not in "".join(str(f) for f in first_socket_frames)
    resumed_at = dropper.frames[0]["data"]["seq"]
    replayed = [f for f in dropper.frames[1:] if f.get("seq", resumed_at) < resumed_at]
    assert any(f["event"] == "state:changed" for f in replayed) and any(f["event"] == "game:message" for f in replayed)
    strictly_ordered(dropper)
    strictly_ordered(stayer)


async def test_since_beyond_the_history_gets_room_state(spawn_roomd: Callable[..., RoomdProcess]) -> None:
    server = spawn_roomd(ROOM_HISTORY_SIZE="5", **FAST)
    _, (host, player) = await room(Api(server.http), [server], ["Host", "P"])
    await host.do("state:set", {"key": "k", "value": 0})
    await player.until("state:changed")
    player.sock.close()
    await host.until("user:disconnected")
    for n in range(1, 7):
        await host.do("state:set", {"key": "k", "value": n})
    gone = await reconnect(server.ws, player, since=player.seq)  # 7 events missed, 5 kept
    assert gone.frames[0]["event"] == "room:state" and gone.state["k"]["value"] == 6
    gone.sock.close()
    await host.until("user:disconnected")
    await host.do("state:set", {"key": "k", "value": 7})
    back = await reconnect(server.ws, gone, since=gone.seq)  # 2 missed: replayed
    assert back.frames[0]["event"] == "room:resumed" and back.frames[0]["data"]["since"] == gone.seq
    assert (await back.until("state:changed"))[-1]["data"]["value"] == 7
    for since in ("999999", "-1", "abc", ""):
        odd = await connect(f"{server.ws}?since={since}", player.membership)
        assert odd.frames[0]["event"] == "room:state"
        odd.sock.close()


async def test_resync_after_a_pubsub_loss_never_sends_an_older_state(
    spawn_roomd: Callable[..., RoomdProcess], private_redis
) -> None:
    """Events flow while Redis drops every subscriber: no frame ever goes back in seq, nothing is lost."""
    private = private_redis()
    a = spawn_roomd(private.url, **FAST)
    b = spawn_roomd(private.url, **FAST)
    _, (host, player) = await room(Api(a.http), [a, b], ["Host", "P"])

    async def stream() -> None:
        for n in range(60):
            await host.sock.send("state:set", {"key": "n", "value": n}, msg_id=f"s{n}")
            await asyncio.sleep(0.005)

    sender = asyncio.ensure_future(stream())
    await player.until("state:changed", lambda d: d["value"] >= 5)
    client = redis.Redis(port=private.port)
    try:
        assert client.client_kill_filter(_type="pubsub") >= 2
    finally:
        client.close()
    await sender
    for n in range(60):
        assert (await host.reply(f"s{n}", timeout=10))["event"] == "ack"
    await mark(host, [host, player], "end")
    assert player.state["n"]["value"] == 59 == host.state["n"]["value"]
    assert any(f["event"] == "room:state" for f in player.frames[1:])  # it was resynchronised
    strictly_ordered(player)
    strictly_ordered(host)
