"""The bus message codec (roomd/domain/bus_message.py): what the scripts write, read back one way."""

from __future__ import annotations

import pytest

from roomd.domain.bus_message import BusMessage, BusMessageError, encode, frame_of


def test_round_trip_of_every_meta_field() -> None:
    raw = encode(
        "user:left",
        {"userId": "b", "reason": "KICKED"},
        seq=7,
        inc="i1",
        to=["a", "b"],
        skip="b",
        direct={"userId": "b", "event": "user:kicked", "data": {"by": "HOST"}},
        close={"userId": "b", "code": 4403},
        resync=["a"],
    )
    msg = BusMessage.decode(raw)
    assert (msg.seq, msg.inc, msg.to, msg.skip, msg.resync) == (7, "i1", {"a", "b"}, "b", {"a"})
    assert msg.direct == {"userId": "b", "event": "user:kicked", "data": {"by": "HOST"}}
    assert msg.close == {"userId": "b", "code": 4403} and not msg.plain
    assert msg.frame() == {"event": "user:left", "data": {"userId": "b", "reason": "KICKED"}, "seq": 7}
    assert BusMessage.decode(msg.encode()).meta() == msg.meta()
    assert msg.for_user("a") and not msg.for_user("c")


def test_what_lua_writes_is_read() -> None:
    """cjson writes an empty table as {}: an empty recipient list; a frame is kept byte for byte."""
    frame = b'{"event":"state:changed","data":{"key":"k","value":1.0000000000000002},"seq":3}'
    msg = BusMessage.decode(b'{"seq":3,"to":{},"later":"ignored"}\n' + frame)
    assert msg.to == frozenset() and msg.payload == frame and msg.plain
    assert not msg.for_user("anyone")
    expired = BusMessage.decode(b'{"close":{"code":4410},"inc":"x"}\n{"event":"room:closed","data":{}}')
    assert expired.seq is None and expired.close == {"code": 4410} and not expired.plain


@pytest.mark.parametrize("raw", [b"no separator", b"[]\n{}", b"not json\n{}", b'{"to":"a"}\n{}'])
def test_malformed_messages_are_refused(raw: bytes) -> None:
    with pytest.raises(BusMessageError):
        BusMessage.decode(raw)


def test_frame_of_ignores_an_unreadable_meta() -> None:
    assert frame_of(b'[]\n{"event":"e","data":{}}') == {"event": "e", "data": {}}
    assert frame_of('{"seq":1}\n{"event":"e","data":{"x":"é"}}') == {"event": "e", "data": {"x": "é"}}
    for raw in (b"nothing", b'{}\n{"data":{}}', b"{}\nnot json"):
        assert frame_of(raw) is None


def test_aud_routes_viewers_and_leaves_members_as_they_were() -> None:
    members_only = BusMessage.decode(encode("user:joined", {}, seq=1, skip="a"))
    assert members_only.aud == 0 and members_only.plain and "aud" not in members_only.meta()
    assert members_only.for_user("b") and not members_only.for_viewer("v1")
    also = BusMessage.decode(encode("user:left", {}, seq=2, to=["a"], aud=1))
    assert also.aud == 1 and also.plain and also.meta()["aud"] == 1
    assert also.for_user("a") and not also.for_user("b")  # to applies to members...
    assert also.for_viewer("v1") and also.for_viewer("v2")  # ...every viewer gets it
    only = BusMessage.decode(encode("game:message", {}, seq=3, aud=2))
    assert only.for_viewer("v1") and not only.for_user("a")  # never a member's, live or replayed
    one = BusMessage.decode(
        encode("audience:kicked", {}, seq=4, aud=2, to=["v1"], close={"code": 4403, "userId": "v1"})
    )
    assert one.for_viewer("v1") and not one.for_viewer("v2") and not one.for_user("v1")
    assert BusMessage.decode(b'{"aud":7}\n{"event":"x","data":{}}').aud == 0  # unknown values: members only
    assert BusMessage.decode(one.encode()).meta() == one.meta()
