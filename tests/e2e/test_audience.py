"""The audience end to end (issue 13 §1): viewers of a room, on real roomd processes and Redis.

Viewers are not members: admitted by ``POST /rooms/:code/audience``, they connect to the same
``/ws`` with a viewer's token, receive what is meant for the audience (``aud`` on the bus) and
may only vote. What must NOT reach a socket is proven absent with markers (game_support.py):
``game:send {to: "all"}`` for members, ``game:send {to: "audience"}`` for viewers, sent after
the action; events of a room reach each socket in order, so anything caused earlier would have
come before the marker.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
from collections.abc import Callable
from typing import Any

import pytest
import redis

from roomd.domain.store import script_text
from tests.e2e.game_support import Member, connect, game_messages, room
from tests.support.clients import Api, Socket, http
from tests.support.processes import RoomdProcess

FAST = {
    "WS_RATE_LIMIT": "1000",
    "WS_RATE_BURST": "1000",
    "THROTTLE_LIMIT": "100000",
    "WS_CONNECT_LIMIT": "100000",
}


@pytest.fixture
def two(spawn_roomd: Callable[..., RoomdProcess]) -> list[RoomdProcess]:
    return [spawn_roomd(**FAST), spawn_roomd(**FAST)]


async def admit(base: str, code: str, name: str | None = "Fan", *, status: int = 201) -> dict[str, Any]:
    """POST /rooms/:code/audience; the body (asserting ``status``)."""
    r = await http(base, "POST", f"/rooms/{code}/audience", {} if name is None else {"displayName": name})
    assert r.status == status, r.body
    return r.body  # type: ignore[no-any-return]


async def watch(process: RoomdProcess, code: str, name: str = "Fan", since: int | None = None) -> Member:
    """Admit a viewer and connect it (its first frame applied)."""
    admission = await admit(process.http, code, name)
    return await connect(process.ws, {"userId": admission["audienceId"], "token": admission["token"]}, since)


async def audience_room(
    api: Api, where: list[RoomdProcess], names: list[str], **options: Any
) -> tuple[str, list[Member]]:
    return await room(api, where, names, audience=True, **options)


async def seen_by_viewers(host: Member, viewers: list[Member], name: str) -> dict[str, list[dict[str, Any]]]:
    """The host's audience marker ``name``; each viewer's frames up to it, by audience id."""
    await host.do("game:send", {"to": "audience", "type": "marker", "data": name})
    return {v.id: await v.until_marker(name) for v in viewers}


async def seen_by_members(host: Member, members: list[Member], name: str) -> dict[str, list[dict[str, Any]]]:
    await host.do("game:send", {"to": "all", "type": "marker", "data": name})
    return {m.id: await m.until_marker(name) for m in members}


def events(frames: list[dict[str, Any]]) -> list[str]:
    return [f["event"] for f in frames]


# -- admission ------------------------------------------------------------------------------


async def test_admission_and_its_refusals(spawn_roomd: Callable[..., RoomdProcess]) -> None:
    process = spawn_roomd(AUDIENCE_MAX="3", **FAST)
    api = Api(process.http)
    host = await api.create("Host", audience=True, maxUsers=1)
    code = host["roomCode"]
    first = await admit(process.http, code.lower(), "Ana")  # codes are case-insensitive
    assert set(first) == {"token", "audienceId", "roomCode"} and first["roomCode"] == code
    r = await http(process.http, "POST", f"/rooms/{code}/audience", raw=b"")  # no body: "Viewer"
    assert r.status == 201, r.body
    # A full room (maxUsers 1) admits viewers: they are not members.
    joined = await http(process.http, "POST", f"/rooms/{code}/join", {"displayName": "Late"})
    assert joined.status == 400 and joined.body["code"] == "ROOM_FULL"
    room_now = (await api.room(code)).body
    assert room_now["memberCount"] == 1
    assert (room_now["audience"], room_now["audienceLocked"], room_now["audienceCount"]) == (True, False, 0)
    for bad in ({"displayName": ""}, {"displayName": "x" * 200}, {"displayName": 3}, {"other": 1}):
        r = await http(process.http, "POST", f"/rooms/{code}/audience", bad)
        assert r.status == 400 and r.body["code"] in ("INVALID_DISPLAY_NAME", "INVALID_BODY"), (bad, r.body)
    # A locked room still admits viewers...
    sock = await connect(process.ws, host)
    await sock.do("room:toggle_lock")
    third = await admit(process.http, code, "Cy")
    # ... up to AUDIENCE_MAX (3 admitted now).
    full = await admit(process.http, code, "Di", status=400)
    assert full["code"] == "AUDIENCE_FULL" and full["statusCode"] == 400
    # A viewer's rejoin: a fresh viewer token while still admitted.
    again = await api.rejoin(code, third["token"])
    assert again.status == 201 and again.body["audienceId"] == third["audienceId"] and again.body["token"]
    # A locked audience refuses (checked before the size).
    await sock.do("audience:lock", {"locked": True})
    refused = await admit(process.http, code, "Ed", status=400)
    assert refused["code"] == "AUDIENCE_LOCKED"
    assert (await api.room(code)).body["audienceLocked"] is True
    # A room created without an audience, and no room at all.
    plain = await api.create("Other")
    assert (await admit(process.http, plain["roomCode"], status=400))["code"] == "AUDIENCE_DISABLED"
    assert (await api.room(plain["roomCode"])).body["audience"] is False
    assert (await admit(process.http, "ZZZZ", status=404))["code"] == "ROOM_NOT_FOUND"


async def test_concurrent_admissions_never_exceed_audience_max(spawn_roomd: Callable[..., RoomdProcess]) -> None:
    process = spawn_roomd(AUDIENCE_MAX="25", **FAST)
    code = (await Api(process.http).create("Host", audience=True))["roomCode"]
    results = await asyncio.gather(
        *(http(process.http, "POST", f"/rooms/{code}/audience", {"displayName": f"V{i}"}) for i in range(80))
    )
    statuses = sorted(r.status for r in results)
    assert statuses.count(201) == 25 and statuses.count(400) == 55, statuses
    assert {r.body["code"] for r in results if r.status == 400} == {"AUDIENCE_FULL"}
    assert len({r.body["audienceId"] for r in results if r.status == 201}) == 25


# -- what a viewer sees -----------------------------------------------------------------------


async def test_viewer_room_state(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, p1) = await audience_room(api, two, ["Host", "P1"])
    await host.do("state:set", {"key": "board", "value": {"round": 1}, "visibleTo": "audience"})
    await host.do("state:set", {"key": "answers", "value": [1, 2]})  # "all": members only
    await host.do("state:set", {"key": "secret", "value": 42, "visibleTo": "host"})
    await host.do("state:set", {"key": "mine", "value": "p1", "visibleTo": [p1.id]})
    viewer = await watch(two[1], code, "Vic")
    state = viewer.frames[0]
    assert state["event"] == "room:state"
    data = state["data"]
    assert data["you"] == {"audienceId": viewer.id, "displayName": "Vic", "role": "viewer"}
    assert [u["id"] for u in data["users"]] == [host.id, p1.id]  # the members, not the viewer
    assert data["state"] == {"board": {"value": {"round": 1}, "version": data["state"]["board"]["version"]}}
    assert data["poll"] is None
    assert data["room"]["audience"] is True and data["room"]["memberCount"] == 2
    # Members read "audience" entries like "all" ones; their room:state has the poll field too.
    again = await connect(two[0].ws, p1.membership)
    member_state = again.frames[0]["data"]
    assert set(member_state["state"]) == {"board", "answers", "mine"} and member_state["poll"] is None
    assert "you" not in member_state


async def test_viewer_gets_audience_messages_and_entries_only(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, p1) = await audience_room(api, two, ["Host", "P1"])
    viewers = [await watch(two[0], code, "V0"), await watch(two[1], code, "V1")]
    members = [host, p1]
    await host.do("game:send", {"to": "all", "type": "members", "data": "m"})
    await host.do("game:send", {"to": "audience", "type": "show", "data": {"q": 1}})
    await host.do("state:set", {"key": "pub", "value": 1, "visibleTo": "audience"})
    await host.do("state:set", {"key": "all", "value": 2})
    await host.do("state:set", {"key": "hidden", "value": 3, "visibleTo": "host"})
    await p1.do("game:send", {"to": "host", "type": "answer", "data": "x"})
    for name, frames in (await seen_by_viewers(host, viewers, "v1")).items():
        assert game_messages(frames) == [(host.id, "show", {"q": 1}), (host.id, "marker", "v1")], name
        changed = [(f["data"]["key"], f["data"]["value"]) for f in frames if f["event"] == "state:changed"]
        assert changed == [("pub", 1)], name
    for m_id, frames in (await seen_by_members(host, members, "m1")).items():
        assert "show" not in [t for _, t, _ in game_messages(frames)], m_id  # aud 2: never a member's
        keys = [f["data"]["key"] for f in frames if f["event"] == "state:changed"]
        assert keys == (["pub", "all", "hidden"] if m_id == host.id else ["pub", "all"])
    # An entry leaving "audience" is deleted for the viewers (members keep it: "all").
    await host.do("state:set", {"key": "pub", "value": 4, "visibleTo": "all"})
    await host.do("state:delete", {"key": "pub"})  # members only now: viewers hear nothing more
    for frames in (await seen_by_viewers(host, viewers, "v2")).values():
        assert [(f["event"], f["data"].get("key")) for f in frames if f["event"].startswith("state:")] == [
            ("state:deleted", "pub")
        ]
    # Back to "audience", then deleted: viewers get both.
    await host.do("state:set", {"key": "pub", "value": 5, "visibleTo": "audience"})
    await host.do("state:delete", {"key": "pub"})
    for frames in (await seen_by_viewers(host, viewers, "v3")).values():
        got = [(f["event"], f["data"].get("value")) for f in frames if f["event"].startswith("state:")]
        assert got == [("state:changed", 5), ("state:deleted", None)]
    for v in viewers:
        assert all(f["event"] not in ("ack", "error:room") for f in v.frames)


async def test_viewers_see_the_members_change(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, p1) = await audience_room(api, two, ["Host", "P1"])
    viewer = await watch(two[1], code)
    joined = await api.join(code, "P2")
    p2 = await connect(two[0].ws, joined)
    await host.do("room:toggle_lock")
    await host.do("room:kick", {"kickUserId": p2.id})
    await host.do("room:transfer_host", {"newHostId": p1.id})
    frames = await viewer.until("room:host_updated")
    assert events(frames) == [
        "user:joined",
        "user:connected",
        "room:lock_toggled",
        "user:left",
        "room:host_updated",
    ]
    assert frames[3]["data"] == {"userId": p2.id, "reason": "KICKED"}  # user:kicked is the kicked member's
    # Viewers are not members: no user:connected for them, nothing in users.
    await seen_by_members(p1, [host, p1], "before-viewer")
    await watch(two[0], code, "Second")
    seen = await seen_by_members(p1, [host, p1], "after-viewer")
    for frames in seen.values():
        assert "user:connected" not in events(frames) and "user:joined" not in events(frames)


async def test_viewer_may_only_vote(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, p1) = await audience_room(api, two, ["Host", "P1"])
    viewer = await watch(two[1], code)
    attempts: list[tuple[str, dict[str, Any] | None]] = [
        ("game:send", {"to": "host", "type": "t", "data": 1}),
        ("game:send", {"to": "audience", "type": "t"}),
        ("state:set", {"key": "k", "value": 1}),
        ("state:delete", {"key": "k"}),
        ("room:kick", {"kickUserId": p1.id}),
        ("room:toggle_lock", None),
        ("room:transfer_host", {"newHostId": p1.id}),
        ("room:close", None),
        ("room:leave", None),
        ("audience:lock", {"locked": True}),
        ("poll:open", {"pollId": "p", "choices": ["a", "b"]}),
    ]
    for event, data in attempts:
        await viewer.fails(event, data, "NOT_ALLOWED")
    unknown = await viewer.reply(await viewer.send("no:such"))
    assert unknown["data"]["code"] == "UNKNOWN_EVENT"
    # The room is as it was: the host still hosts, nobody left, nothing was sent.
    seen = await seen_by_members(host, [host, p1], "still")
    assert all(game_messages(f) == [(host.id, "marker", "still")] for f in seen.values())
    # game:send to the audience is the host's alone; members cannot vote.
    await p1.fails("game:send", {"to": "audience", "type": "t"}, "NOT_ALLOWED")
    await p1.fails("audience:lock", {"locked": True}, "NOT_HOST")
    plain_code, (plain_host,) = await room(api, two, ["Solo"])
    await plain_host.fails("game:send", {"to": "audience", "type": "t"}, "AUDIENCE_DISABLED")
    await plain_host.fails("audience:lock", {"locked": True}, "AUDIENCE_DISABLED")
    assert (await viewer.sock.silent(0.05)) and plain_code


async def test_audience_lock_tells_the_members(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, p1) = await audience_room(api, two, ["Host", "P1"])
    viewer = await watch(two[1], code)
    seq = await host.do("audience:lock", {"locked": True})
    for m in (host, p1):
        frames = await m.until("audience:lock_updated")
        assert frames[-1]["data"] == {"locked": True} and frames[-1]["seq"] == seq
    await host.do("audience:lock", {"locked": True})  # no change: no event
    await host.do("audience:lock", {"locked": False})
    frames = await p1.until("audience:lock_updated")
    assert [f["data"] for f in frames if f["event"] == "audience:lock_updated"] == [{"locked": False}]
    # Viewers admitted before stay, and the lock is the members' business.
    seen = await seen_by_viewers(host, [viewer], "lock")
    assert "audience:lock_updated" not in events(seen[viewer.id])


# -- the host's count -------------------------------------------------------------------------


async def test_audience_count_reaches_the_host_throttled(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host,) = await audience_room(api, two, ["Host"])
    n = 12
    viewers = await asyncio.gather(*(watch(two[i % 2], code, f"V{i}") for i in range(n)))
    await host.until("audience:count", count=n, timeout=10)
    frames = [f for f in host.frames if f["event"] == "audience:count"]
    assert frames[-1]["data"]["count"] == n
    assert len(frames) < n, [f["data"] for f in frames]  # not one per connect
    assert (await api.room(code)).body["audienceCount"] == n
    for v in viewers[:5]:
        v.sock.close()
    await host.until("audience:count", count=n - 5, timeout=10)
    assert (await api.room(code)).body["audienceCount"] == n - 5


async def test_a_dead_instances_viewers_leave_the_count(spawn_roomd: Callable[..., RoomdProcess]) -> None:
    fast = {**FAST, "INSTANCE_TIMEOUT_MS": "1000"}
    one, other = spawn_roomd(**fast), spawn_roomd(**fast)
    code, (host,) = await audience_room(Api(one.http), [one], ["Host"])
    await watch(other, code, "Gone1")
    await watch(other, code, "Gone2")
    await host.until("audience:count", count=2, timeout=10)
    other.signal(signal.SIGKILL)  # kill -9: its ONLINE field stays in Redis
    # A viewer connecting anywhere nudges a count, which drops the dead instance's field.
    await asyncio.sleep(1.5)  # the dead instance's heartbeat goes stale (INSTANCE_TIMEOUT_MS)
    await watch(one, code, "Live")
    await host.until("audience:count", count=1, timeout=10)


# -- two processes, kick, close ---------------------------------------------------------------


async def test_viewers_on_two_processes_receive_broadcasts(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, _p1) = await audience_room(api, two, ["Host", "P1"])
    viewers = [await watch(two[i % 2], code, f"V{i}") for i in range(6)]
    for n in range(3):
        await host.do("game:send", {"to": "audience", "type": "round", "data": n})
    seen = await seen_by_viewers(host, viewers, "done")
    for frames in seen.values():
        assert [d for _, t, d in game_messages(frames) if t == "round"] == [0, 1, 2]
    for process in two:  # 3 viewers each; the host and P1 are members
        text = (await http(process.http, "GET", "/metrics")).body
        samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line[:1] != "#"}
        assert samples["roomd_viewer_sockets"] == 3 and samples["roomd_open_sockets"] == 4


async def test_kick_a_viewer(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, p1) = await audience_room(api, two, ["Host", "P1"])
    kicked, stays = await watch(two[1], code, "Out"), await watch(two[0], code, "In")
    seq = await host.do("room:kick", {"kickUserId": kicked.id})
    frames = await kicked.until("audience:kicked")
    assert frames[-1]["data"] == {"audienceId": kicked.id} and frames[-1]["seq"] == seq
    assert await kicked.sock.closed() == 4403
    # The token is dead: rejoin and connect refuse it.
    r = await api.rejoin(code, kicked.token)
    assert r.status == 404 and r.body["code"] == "MEMBER_NOT_FOUND"
    again = await Socket.connect(two[0].ws, kicked.token)
    assert (await again.next_event())["data"]["code"] == "MEMBER_NOT_FOUND"
    assert await again.closed() == 4404
    # Nobody else heard of it; the other viewer is still there.
    seen = await seen_by_viewers(host, [stays], "after")
    assert "audience:kicked" not in events(seen[stays.id])
    members = await seen_by_members(host, [host, p1], "after")
    assert all("audience:kicked" not in events(f) and "user:left" not in events(f) for f in members.values())
    await p1.fails("room:kick", {"kickUserId": stays.id}, "NOT_HOST")


async def test_closing_the_room_closes_its_viewers(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, _p1) = await audience_room(api, two, ["Host", "P1"])
    viewers = [await watch(two[0], code, "A"), await watch(two[1], code, "B")]
    await host.sock.send("room:close")
    for v in viewers:
        frames = await v.until("room:closed")
        assert frames[-1]["data"] == {"reason": "HOST_CLOSED"}
        assert await v.sock.closed() == 4410
    r = await api.rejoin(code, viewers[0].token)
    assert r.status == 404


async def test_viewer_resumes_with_since(two: list[RoomdProcess]) -> None:
    api = Api(two[0].http)
    code, (host, _p1) = await audience_room(api, two, ["Host", "P1"])
    viewer = await watch(two[1], code)
    await host.do("game:send", {"to": "audience", "type": "one", "data": 1})
    await viewer.until("game:message", type="one")
    since = viewer.seq
    viewer.sock.close()
    await host.do("game:send", {"to": "audience", "type": "two", "data": 2})
    await host.do("game:send", {"to": "all", "type": "members", "data": 3})
    await host.do("state:set", {"key": "hidden", "value": 1, "visibleTo": "host"})
    await host.do("state:set", {"key": "shown", "value": 2, "visibleTo": "audience"})
    url = f"{two[0].ws}?since={since}"
    back = Member(viewer.membership, await Socket.connect(url, viewer.token))
    assert (await back.next())["event"] == "room:resumed"
    frames = await back.until("state:changed", key="shown")
    assert [(f["event"], f["data"].get("type") or f["data"].get("key")) for f in frames] == [
        ("game:message", "two"),
        ("state:changed", "shown"),
    ]
    assert "secret" not in json.dumps(frames)


async def test_an_expired_room_closes_its_viewers(spawn_roomd: Callable[..., RoomdProcess]) -> None:
    process = spawn_roomd(ROOM_TTL_SECONDS="2", **FAST)
    code = (await Api(process.http).create("Host", audience=True))["roomCode"]
    viewer = await watch(process, code)  # a viewer does not keep the room alive
    frames = await viewer.until("room:closed", timeout=10)
    assert frames[-1]["data"] == {"reason": "EXPIRED"} and "seq" not in frames[-1]
    assert await viewer.sock.closed() == 4410


async def test_viewers_resync_after_a_pubsub_loss(spawn_roomd: Callable[..., RoomdProcess], private_redis: Any) -> None:
    """Redis drops the subscriber: every viewer re-reads its own room:state (batched: one read for
    many viewers), never older than an event it has, with the changes made meanwhile."""
    private = private_redis()
    process = spawn_roomd(private.url, **FAST)
    code, (host,) = await audience_room(Api(process.http), [process], ["Host"])
    viewers = [await watch(process, code, f"V{i}") for i in range(5)]
    await host.do("poll:open", {"pollId": "p", "choices": ["a", "b"]})
    await viewers[0].do("poll:vote", {"pollId": "p", "choice": "b"})
    client = redis.Redis(port=private.port)
    try:
        assert client.client_kill_filter(_type="pubsub") >= 1
    finally:
        client.close()
    for n in range(20):
        await host.do("state:set", {"key": "stage", "value": n, "visibleTo": "audience"})
    seen = await seen_by_viewers(host, viewers, "after")
    for i, viewer in enumerate(viewers):
        states = [f for f in viewer.frames if f["event"] == "room:state"]
        assert len(states) >= 2, f"viewer {i} was not resynchronised"
        again = states[-1]["data"]
        assert again["you"] == {"audienceId": viewer.id, "displayName": f"V{i}", "role": "viewer"}
        assert again["poll"]["vote"] == ("b" if i == 0 else None)
        assert viewer.state["stage"]["value"] == 19, seen[viewer.id]
        seqs = [f["seq"] for f in viewer.frames if "seq" in f]
        assert seqs == sorted(seqs)  # never an older room:state after a newer event
    client = redis.Redis(port=private.port)
    try:  # the batch read ran (the single-viewer read is audience_connect's, loaded at connect)
        assert client.script_exists(hashlib.sha1(script_text("audience_resync").encode()).hexdigest()) == [True]
    finally:
        client.close()
