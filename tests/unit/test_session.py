"""The session state machine, without sockets: buffering, seq filtering, replies, closes."""

from __future__ import annotations

import json
from typing import Any

from roomd.domain.bus_message import BusMessage, encode
from roomd.protocol import CloseCode
from roomd.transport import frames
from roomd.transport.session import Phase, Session


class FakeSink:
    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.closed: CloseCode | None = None
        self.closing_code: CloseCode | None = None
        self.snapshots_wanted = 0
        self.waiting = False

    def write_wire(self, wire: bytes) -> None:
        self.written.append(json.loads(wire[2:] if wire[1] < 126 else wire[4:]))

    def close_with(self, code: CloseCode) -> None:
        self.closed = code

    def closing(self, code: CloseCode) -> None:
        self.closing_code = code

    def want_snapshot(self) -> None:
        self.snapshots_wanted += 1

    def wait_for_room(self, waiting: bool) -> None:
        self.waiting = waiting

    def events(self) -> list[tuple[str, int | None]]:
        return [(f["event"], f.get("seq")) for f in self.written]


def raw(seq: int | None, event: str = "e", **meta: Any) -> bytes:
    """A bus message as the scripts write it."""
    return encode(event, {}, seq=seq, **meta)


def message(seq: int | None, event: str = "e", **meta: Any) -> tuple[BusMessage, bytes]:
    msg = BusMessage.decode(raw(seq, event, **meta))
    return msg, frames.wire(msg.payload)


def state(seq: int) -> bytes:
    return frames.encode("room:state", {"room": {}, "users": [], "state": {}}, seq)


def live(user: str = "u") -> tuple[Session, FakeSink]:
    sink = FakeSink()
    session = Session(user, "sock", sink)
    session.apply_snapshot(state(5), 5)
    return session, sink


def test_events_during_connect_are_queued_and_filtered_by_the_snapshot_seq() -> None:
    sink = FakeSink()
    session = Session("u", "sock", sink)
    for seq in (4, 5, 6):
        session.deliver(*message(seq))
    assert sink.written == []
    session.apply_snapshot(state(5), 5)
    assert sink.events() == [("room:state", 5), ("e", 6)]


def test_a_resync_never_writes_an_older_state_after_a_newer_event() -> None:
    """The bug this replaces: a live event written while the snapshot was read, then the older snapshot."""
    session, sink = live()
    session.deliver(*message(6))
    assert session.begin_resync() and session.phase is Phase.RESYNCING
    session.deliver(*message(8))  # arrives while the snapshot (seq 7) is being read: queued
    session.apply_snapshot(state(7), 7)
    assert sink.events() == [("room:state", 5), ("e", 6), ("room:state", 7), ("e", 8)]


def test_a_resync_follows_redis_back_after_a_failover_lost_writes() -> None:
    """Only lost writes make a snapshot older than events already written (a snapshot is read after
    every event written before it): the new master's state is sent and its seq followed, else every
    later event would be dropped as already seen."""
    session, sink = live()
    session.deliver(*message(6))
    session.deliver(*message(7))  # acknowledged by the old master, never replicated
    assert session.begin_resync()
    session.apply_snapshot(state(6), 6)
    session.deliver(*message(7))  # the new master's own seq 7
    assert sink.events()[-2:] == [("room:state", 6), ("e", 7)] and session.phase is Phase.LIVE


def test_a_loss_during_connect_asks_for_a_second_snapshot() -> None:
    sink = FakeSink()
    session = Session("u", "sock", sink)
    assert not session.begin_resync()  # the connect snapshot may predate the loss
    session.apply_snapshot(state(5), 5)
    assert sink.snapshots_wanted == 1 and session.phase is Phase.RESYNCING


def test_per_member_rules_live_and_in_replays() -> None:
    sink = FakeSink()
    session = Session("u", "sock", sink)
    raws = [
        raw(2, "for-others", to=["x"]),
        raw(3, "skipped", skip="u"),
        raw(4, "mine", to=["u", "x"]),
        raw(5, "public", close={"userId": "u", "code": 4409, "exceptSocket": "older"}),
        raw(6, "left", direct={"userId": "u", "event": "user:kicked", "data": {"userId": "u", "by": "HOST"}}),
    ]
    session.apply_resumed(frames.encode("room:resumed", {"since": 1, "seq": 7}), raws, 7)
    # A replay never closes (its closes were for older sockets); direct frames carry the seq.
    assert sink.events() == [("room:resumed", None), ("mine", 4), ("public", 5), ("user:kicked", 6)]
    assert sink.closed is None and session.seq == 7
    session.deliver(*message(7))  # already reflected
    session.deliver(*message(8, "live"))
    assert sink.events()[-1] == ("live", 8)


def test_a_new_host_rereads_a_snapshot_with_events_queued_meanwhile() -> None:
    session, sink = live()
    session.deliver(*message(6, "room:host_updated", resync=["u", "old"]))
    assert sink.events()[-1] == ("room:host_updated", 6) and sink.snapshots_wanted == 1
    session.deliver(*message(7))
    session.apply_snapshot(state(6), 6)
    assert sink.events()[-2:] == [("room:state", 6), ("e", 7)]


def test_acks_wait_for_the_events_they_caused_and_errors_keep_their_place() -> None:
    session, sink = live()
    session.command_started()
    session.reply(frames.ack("a", 7), 7)
    session.command_finished()
    session.reply(frames.error("NOT_ALLOWED", "no", msg_id="b"))
    assert sink.events() == [("room:state", 5)] and sink.waiting
    session.deliver(*message(6))
    session.observe(6)
    assert sink.events()[-1] == ("e", 6)
    session.observe(7)  # the ack's event was not for this member: the room's progress is enough
    assert [f["data"].get("id") for f in sink.written[-2:]] == ["a", "b"] and not sink.waiting


def test_a_close_waits_for_own_replies_but_ends_room_frames_at_once() -> None:
    session, sink = live()
    session.command_started()
    session.deliver(*message(6, "user:left", close={"userId": "u", "code": 1000}, skip="u"))
    assert session.phase is Phase.CLOSING and sink.closing_code == CloseCode.LEFT and sink.closed is None
    session.deliver(*message(7, "after"))  # a kicked or departed member receives nothing more
    session.reply(frames.ack("leave", 6), 6)
    session.command_finished()
    assert sink.events() == [("room:state", 5), ("ack", None)] and sink.closed == CloseCode.LEFT


def test_closes_for_other_sockets_and_users_are_ignored() -> None:
    session, sink = live()
    session.deliver(*message(6, close={"userId": "u", "code": 4409, "exceptSocket": "sock"}))
    session.deliver(*message(7, close={"userId": "x", "code": 4403}))
    assert sink.closed is None and session.phase is Phase.LIVE
    session.deliver(*message(8, close={"code": 4410}))
    assert sink.closed == CloseCode.ROOM_CLOSED


def test_a_member_removed_while_resyncing_gets_the_reason_not_a_bare_4404() -> None:
    """A transfer makes the old host re-read a snapshot; the new host kicks it meanwhile."""
    session, sink = live()
    session.deliver(*message(6, "room:host_updated", resync=["u"]))
    kicked = {"userId": "u", "event": "user:kicked", "data": {"userId": "u", "by": "HOST"}}
    session.deliver(*message(7, "user:left", skip="u", direct=kicked, close={"userId": "u", "code": 4403}))
    assert sink.events()[-1] == ("room:host_updated", 6)  # the kick is queued behind the snapshot
    assert session.abandon_snapshot() is False  # the snapshot was refused: the queued kick explains it
    assert sink.events()[-1] == ("user:kicked", 7) and sink.closed == CloseCode.KICKED
