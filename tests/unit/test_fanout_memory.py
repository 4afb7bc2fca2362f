"""Fan-out without Redis: the hub, real sessions and the in-process broker (roomd/fanout).

The broker behaves like a Redis subscriber seen from roomd (confirmations and messages
on later loop turns, messages lost while a subscription is down), so the rules of
delivery, reference counting and resync are tested here in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable
from typing import Any

import pytest

from roomd.domain.bus_message import encode
from roomd.fanout import Hub, InProcessBroker
from roomd.protocol import CloseCode
from roomd.transport import frames
from roomd.transport.session import Session


def unframe(wire: bytes) -> dict[str, Any]:
    """The JSON of a server frame written by ``frames.wire`` (small frames in these tests)."""
    assert wire[0] == 0x81 and wire[1] < 126
    return json.loads(wire[2:])


class Room:
    """The test's stand-in for a room's truth in Redis: its seq, and its publishing script."""

    def __init__(self, broker: InProcessBroker, code: str) -> None:
        self.broker = broker
        self.code = code
        self.seq = 0

    def publish(self, event: str, **meta: Any) -> int:
        """Like a script: the next seq, published once (lost if the subscription is down)."""
        self.seq += 1
        self.broker.publish(self.code, encode(event, {}, seq=self.seq, **meta))
        return self.seq


class Socket:
    """A LocalSocket with a real Session; its sink records the frames it writes."""

    viewer = False  # a member (Viewer below: a viewer of the room's audience)

    def __init__(self, hub: Hub, broker: InProcessBroker, room: Room, user_id: str) -> None:
        self.hub, self.broker, self.room = hub, broker, room
        self.room_code, self.user_id, self.socket_id = room.code, user_id, secrets.token_hex(4)
        self.session = Session(user_id, self.socket_id, self, viewer=self.viewer)
        self.deliver, self.observe = self.session.deliver, self.session.observe
        self.written: list[dict[str, Any]] = []
        self.closed: int | None = None
        self.snapshots = 0
        self.tasks: list[asyncio.Future[None]] = []

    registered = True

    async def connect(self) -> Socket:
        self.hub.add(self)
        await self.broker.subscribe(self.room_code)
        await self._read_snapshot()
        return self

    def begin_resync(self) -> Awaitable[None] | None:
        return self._read_snapshot() if self.session.begin_resync() else None

    async def _read_snapshot(self) -> None:
        await asyncio.sleep(0)  # a round trip: events may be published meanwhile
        self.room.publish("other:activity")  # ... and here one is (queued by the session)
        self.snapshots += 1
        seq = self.room.seq
        self.session.apply_snapshot(frames.encode("room:state", {}, seq), seq)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed = code
        self.hub.remove(self)
        self.broker.unsubscribe(self.room_code)

    # the session's sink
    def write_wire(self, wire: bytes) -> None:
        self.written.append(unframe(wire))

    def close_with(self, code: CloseCode) -> None:
        self.close(code)

    def closing(self, code: CloseCode) -> None:
        pass

    def want_snapshot(self) -> None:
        self.tasks.append(asyncio.ensure_future(self._read_snapshot()))

    def wait_for_room(self, waiting: bool) -> None:
        self.hub.wait(self, waiting)

    def events(self) -> list[tuple[str, int | None]]:
        return [(f["event"], f.get("seq")) for f in self.written]


class Viewer(Socket):
    viewer = True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def fanout() -> tuple[Hub, InProcessBroker, list[list[str]]]:
    hub = Hub(prepare=frames.wire)
    broker = InProcessBroker(hub.deliver, linger=0.05, subscribe_timeout=0.2)
    resynced: list[list[str]] = []

    async def on_resubscribed(codes: list[str]) -> None:
        resynced.append(codes)
        await hub.resync(codes)

    broker.on_resubscribed = on_resubscribed
    return hub, broker, resynced


async def test_events_reach_their_room_and_recipients_only(fanout: Any) -> None:
    hub, broker, _ = fanout
    a, b = Room(broker, "AAAA"), Room(broker, "BBBB")
    ana, ana2, bob = [await Socket(hub, broker, a, user).connect() for user in ("ana", "ana", "bob")]
    other = await Socket(hub, broker, b, "zoe").connect()
    await settle()
    for sock in (ana, ana2, bob, other):
        sock.written.clear()
    received, delivered = hub.received, hub.delivered
    every = a.publish("for:all")
    mine = a.publish("for:ana", to=["ana"])
    others = a.publish("not:ana", skip="ana")
    marker = b.publish("marker")
    await settle()
    assert ana.events() == ana2.events() == [("for:all", every), ("for:ana", mine)]
    assert bob.events() == [("for:all", every), ("not:ana", others)]
    assert other.events() == [("marker", marker)]  # nothing of room AAAA came before B's marker
    assert hub.received - received == 4 and hub.delivered - delivered == 3 + 2 + 3 + 1


async def test_subscriptions_are_counted_and_linger(fanout: Any) -> None:
    hub, broker, _ = fanout
    room = Room(broker, "CCCC")
    first, second = [await Socket(hub, broker, room, user).connect() for user in ("a", "b")]
    first.close()
    second.close()
    assert broker.rooms() == ["CCCC"]  # lingering: a reconnection within LINGER costs no SUBSCRIBE
    again = Socket(hub, broker, room, "a")
    hub.add(again)
    subscribing = asyncio.ensure_future(broker.subscribe("CCCC"))
    await asyncio.sleep(0)
    assert subscribing.done()  # still confirmed: no round trip
    again.close()
    await asyncio.sleep(0.1)
    assert broker.rooms() == [] and broker.publish("CCCC", encode("late", {}, seq=9)) == 0


async def test_subscribe_times_out_while_the_broker_is_down(fanout: Any) -> None:
    _, broker, _ = fanout
    broker.outage()
    assert not broker.connected
    with pytest.raises(TimeoutError):
        await broker.subscribe("DDDD")
    await asyncio.sleep(0.1)
    assert broker.rooms() == []  # the failed hold lingered out


async def test_a_lost_subscription_resyncs_exactly_its_rooms(fanout: Any) -> None:
    """Events published while a room's subscription is down are lost: once it is back, that room's
    sockets (only) read a fresh room:state, never older than an event they already have."""
    hub, broker, resynced = fanout
    a, b = Room(broker, "AAAA"), Room(broker, "BBBB")
    ana, bob = await Socket(hub, broker, a, "ana").connect(), await Socket(hub, broker, a, "bob").connect()
    fan = await Viewer(hub, broker, a, "fan").connect()  # a viewer of room AAAA's audience: resynced alike
    zoe = await Socket(hub, broker, b, "zoe").connect()
    a.publish("before", aud=1)
    await settle()
    broker.outage(["AAAA"])
    lost = a.publish("lost", aud=1)
    kept = b.publish("kept")
    await settle()
    assert ("lost", lost) not in ana.events() and ("kept", kept) in zoe.events()
    broker.restore()
    await settle()
    await settle()  # three snapshot reads, one after the other
    a.publish("after", aud=1)
    await settle()
    assert resynced == [["AAAA"]]
    for sock in (ana, bob, fan):
        events = sock.events()
        assert ("lost", lost) not in events and events[-1][0] == "after"
        states = [seq for event, seq in events if event == "room:state"]
        assert len(states) == 2 and states[-1] >= lost  # the truth, including the lost event
        assert [seq for _, seq in events] == sorted({seq for _, seq in events})  # never backwards, never twice
    assert zoe.snapshots == 1  # room BBBB was never resynced
    assert broker.reconnects == 1


async def test_a_malformed_message_is_dropped_not_fatal(fanout: Any, caplog: Any) -> None:
    hub, broker, _ = fanout
    room = Room(broker, "EEEE")
    sock = await Socket(hub, broker, room, "u").connect()
    broker.publish("EEEE", b"garbage without a separator")
    room.publish("next")
    await settle()
    assert sock.events()[-1][0] == "next" and "malformed bus message" in caplog.text


async def test_an_ack_whose_event_went_to_others_and_came_first_is_not_held(fanout: Any) -> None:
    """A player's game:send to the host: its event (seq N) reaches only the host, and may reach this
    process before the script's reply does. The ack waits for seq N, which this process has already
    seen: it is written at once, not at the room's next event (in a quiet room: never)."""
    hub, broker, _ = fanout
    room = Room(broker, "CCCC")
    host, player = [await Socket(hub, broker, room, user).connect() for user in ("host", "player")]
    await settle()
    seq = room.publish("game:message", to=["host"])
    await settle()  # the event arrives ...
    player.session.reply(frames.encode("ack", {"id": 1, "seq": seq}), after_seq=seq)  # ... then the reply
    assert ("ack", None) in player.events()
    assert ("game:message", seq) in host.events() and ("game:message", seq) not in player.events()


async def test_viewers_are_reached_by_aud_only(fanout: Any) -> None:
    """aud absent: members only (the viewer loop is not entered); 1: members per to/skip and every
    viewer; 2: viewers only, ``to`` naming viewers. A room closing (close without userId) closes
    viewers too; a close naming one viewer closes that one."""
    hub, broker, _ = fanout
    room = Room(broker, "VVVV")
    ana = await Socket(hub, broker, room, "ana").connect()
    bob = await Socket(hub, broker, room, "bob").connect()
    v1, v2, v1b = [await Viewer(hub, broker, room, vid).connect() for vid in ("v1", "v2", "v1")]
    await settle()
    assert len(hub) == 5 and hub.viewers("VVVV") == 3 and len(hub.sockets("VVVV")) == 5
    for sock in (ana, bob, v1, v2, v1b):
        sock.written.clear()
    delivered = hub.delivered
    members = room.publish("members:only", skip="ana")
    also = room.publish("also", to=["ana"], aud=1)
    only = room.publish("viewers:only", aud=2)
    one = room.publish("to:v1", aud=2, to=["v1"])
    await settle()
    assert ana.events() == [("also", also)]
    assert bob.events() == [("members:only", members)]
    assert v1.events() == v1b.events() == [("also", also), ("viewers:only", only), ("to:v1", one)]
    assert v2.events() == [("also", also), ("viewers:only", only)]
    assert hub.delivered - delivered == 2 + 1 + 3 + 3 + 2
    kicked = room.publish("audience:kicked", aud=2, to=["v2"], close={"code": 4403, "userId": "v2"})
    await settle()
    assert v2.events()[-1] == ("audience:kicked", kicked) and v2.closed == 4403
    assert v1.closed is None and ana.closed is None and hub.viewers("VVVV") == 2
    closed = room.publish("room:closed", aud=1, close={"code": 4410})
    await settle()
    for sock in (ana, bob, v1, v1b):
        assert sock.events()[-1] == ("room:closed", closed) and sock.closed == 4410
    assert len(hub) == 0 and hub.rooms() == []


async def test_a_viewer_replay_follows_the_viewer_rules(fanout: Any) -> None:
    hub, broker, _ = fanout
    viewer = Viewer(hub, broker, Room(broker, "RRRR"), "v1")
    history = [
        encode("members", {}, seq=2),
        encode("also", {}, seq=3, aud=1, to=["ana"]),
        encode("mine", {}, seq=4, aud=2, to=["v1"]),
        encode("other:viewer", {}, seq=5, aud=2, to=["v2"], close={"code": 4403, "userId": "v2"}),
        encode("closing:old", {}, seq=6, aud=1, close={"code": 4410}),  # a replay never closes
    ]
    viewer.session.apply_resumed(frames.encode("room:resumed", {"since": 1, "seq": 6}), history, 6)
    assert viewer.events() == [("room:resumed", None), ("also", 3), ("mine", 4), ("closing:old", 6)]
    assert viewer.closed is None
    member = Socket(hub, broker, Room(broker, "RRRR"), "ana")
    member.session.apply_resumed(frames.encode("room:resumed", {"since": 1, "seq": 6}), history, 6)
    assert member.events() == [("room:resumed", None), ("members", 2), ("also", 3), ("closing:old", 6)]
