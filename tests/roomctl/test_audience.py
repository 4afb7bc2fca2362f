"""roomctl and the audience (issue 13): rooms show, list, audience, poll, kick, audience-lock on the private Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from roomd.config import from_env
from roomd.domain.bus_message import BusMessage, frame_of
from roomd.domain.overview import Overview
from roomd.domain.redis_target import target_from_settings
from roomd.domain.store import RoomOptions, RoomStore, make_redis_client, now_ms
from tests.roomctl.conftest import Roomctl, as_json, invoke
from tests.roomctl.test_completion import complete
from tests.roomctl.test_live import roomctl as run_roomctl
from tests.roomctl.test_state import TERMINAL
from tests.roomctl.test_stats_events import following
from tests.support.clients import Api, Socket, http
from tests.support.processes import RedisServer, RoomdProcess
from tests.support.redis_ha import ClusterServers

INSTANCE = "test-host:1:8000:aaaa"
DEAD = "dead-host:9:8000:bbbb"  # never heartbeats: its viewers are not counted
AUDIENCE_MAX = 10_000


# -- set-up: through the store, as roomd does it ---------------------------------------------


async def audience_room(store: RoomStore, host: str = "Ana") -> str:
    return (await store.create_room(host, options=RoomOptions(audience=True))).room_code


async def admit(store: RoomStore, code: str, name: str) -> str:
    """A viewer admitted as ``POST /rooms/:code/audience`` admits it; its audience id."""
    return (await store.join_audience(code, name, AUDIENCE_MAX)).user_id


async def connect_viewers(store: RoomStore, code: str, instance: str, *audience_ids: str) -> None:
    """Viewer sockets on roomd instance ``instance`` (counted on it, as its WebSocket handler does:
    each connect writes the instance's number of viewer sockets of the room)."""
    store.instance_id = instance
    try:
        for online, audience_id in enumerate(audience_ids, 1):
            await store.audience_connect(code, audience_id, online=online)
    finally:
        store.instance_id = ""


async def live(store: RoomStore, instance: str = INSTANCE) -> None:
    """A heartbeat of ``instance``: it is alive for INSTANCE_TIMEOUT_MS."""
    store.instance_id = instance
    try:
        await store.heartbeat()
    finally:
        store.instance_id = ""


# -- rooms show / list -------------------------------------------------------------------------


async def test_show_counts_the_audience_on_live_instances(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    zoe, yann, xia = [await admit(store, code, name) for name in ("Zoe", "Yann", "Xia")]
    await live(store)
    await connect_viewers(store, code, INSTANCE, zoe, yann)
    await connect_viewers(store, code, DEAD, xia, xia)  # an instance that died: its sockets are gone
    shown = as_json(await roomctl("rooms", "show", code, "--json"))
    room = shown["room"]
    assert (room["audience"], room["audienceLocked"], room["audienceConnected"], room["audienceAdmitted"]) == (
        True, False, 2, 3,
    )  # fmt: skip
    assert shown["poll"] is None
    lines = (await roomctl("rooms", "show", code)).stdout.splitlines()
    assert "audience\t2 connected / 3 admitted, open" in lines
    assert not any(line.startswith("poll\t") for line in lines)  # no poll: no poll line


async def test_the_instance_timeout_is_roomds(roomctl: Roomctl, store: RoomStore) -> None:
    """An instance is dead for roomctl when roomd would judge it so: INSTANCE_TIMEOUT_MS, read like roomd's."""
    code = await audience_room(store)
    await live(store)
    await connect_viewers(store, code, INSTANCE, await admit(store, code, "Zoe"))
    await store.client.zadd(store.keys.instances, {INSTANCE: now_ms() - 5_000})  # last heard of 5 s ago
    counted = as_json(await roomctl("rooms", "show", code, "--json"))["room"]["audienceConnected"]
    shorter = await roomctl("rooms", "show", code, "--json", env={"INSTANCE_TIMEOUT_MS": "2000"})
    assert (counted, as_json(shorter)["room"]["audienceConnected"]) == (1, 0)


async def test_show_without_an_audience(roomctl: Roomctl, store: RoomStore) -> None:
    code = (await store.create_room("Ana")).room_code
    shown = as_json(await roomctl("rooms", "show", code, "--json"))
    assert (shown["room"]["audience"], shown["room"]["audienceConnected"], shown["poll"]) == (False, 0, None)
    assert "audience\toff" in (await roomctl("rooms", "show", code)).stdout.splitlines()


async def test_show_has_the_poll_with_its_counts(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    viewers = [await admit(store, code, f"V{n}") for n in range(3)]
    await store.open_poll(code, None, "q1", ["Red", "Blue", "Green"])
    await store.vote(code, viewers[0], "q1", "Blue")
    await store.vote(code, viewers[1], "q1", "Blue")
    await store.vote(code, viewers[2], "q1", "Red")
    await store.vote(code, viewers[2], "q1", "Blue")  # changed its mind
    shown = as_json(await roomctl("rooms", "show", code, "--json"))
    assert shown["poll"]["counts"] == {"Red": 0, "Blue": 3, "Green": 0} and shown["poll"]["votes"] == 3
    assert list(shown["poll"]["counts"]) == ["Red", "Blue", "Green"]  # the poll's order
    assert "poll\tq1 open: Red 0, Blue 3, Green 0 (3 votes)" in (await roomctl("rooms", "show", code)).stdout


async def test_list_has_an_audience_column_and_filter(roomctl: Roomctl, store: RoomStore) -> None:
    plain = (await store.create_room("Bob")).room_code
    await asyncio.sleep(0.003)
    code = await audience_room(store)
    await connect_viewers(store, code, INSTANCE, await admit(store, code, "Zoe"))
    await live(store)
    lines = (await roomctl("rooms", "list")).stdout.splitlines()
    assert lines[0].split("\t")[-1] == "AUDIENCE c/a"  # last: scripts reading earlier columns are unaffected
    assert [line.split("\t")[-1] for line in lines[1:]] == ["1/1", "-"]
    listed = as_json(await roomctl("rooms", "list", "--json"))
    assert [(r["code"], r["audienceConnected"], r["audienceAdmitted"]) for r in listed["rooms"]] == [
        (code, 1, 1), (plain, 0, 0),
    ]  # fmt: skip
    only = as_json(await roomctl("rooms", "list", "--with-audience", "--json"))
    assert [r["code"] for r in only["rooms"]] == [code]


# -- rooms audience ----------------------------------------------------------------------------


async def test_audience_pages_oldest_first(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    ids = []
    for n in range(5):
        ids.append(await admit(store, code, f"Viewer{n}"))
        await asyncio.sleep(0.003)  # admission times are milliseconds: keep the order known
    first = as_json(await roomctl("rooms", "audience", code.lower(), "--limit", "2", "--json"))
    assert [v["id"] for v in first["viewers"]] == ids[:2]
    assert first["audience"] == {"enabled": True, "locked": False, "connected": 0, "admitted": 5}
    assert first["viewers"][0]["displayName"] == "Viewer0" and first["viewers"][0]["joinedAt"].endswith("Z")
    second = as_json(await roomctl("rooms", "audience", code, "--limit", "2", "--cursor", first["nextCursor"],
                                   "--json"))  # fmt: skip
    assert [v["id"] for v in second["viewers"]] == ids[2:4]
    third = as_json(await roomctl("rooms", "audience", code, "--limit", "2", "--cursor", second["nextCursor"],
                                  "--json"))  # fmt: skip
    assert [v["id"] for v in third["viewers"]] == ids[4:] and third["nextCursor"] is None
    plain = await roomctl("rooms", "audience", code, "--limit", "2")
    assert plain.stdout.splitlines()[0] == "ID\tDISPLAY NAME\tJOINED"
    assert plain.stdout.splitlines()[1].startswith(f"{ids[0]}\tViewer0\t")
    assert plain.stderr.startswith(f"more: roomctl rooms audience {code} --limit 2 --cursor ")


async def test_audience_name_filter_and_errors(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    await admit(store, code, "Anaïs")
    await admit(store, code, "Bob")
    found = as_json(await roomctl("rooms", "audience", code, "--name", "ANA", "--json"))
    assert [v["displayName"] for v in found["viewers"]] == ["Anaïs"]
    missing = await roomctl("rooms", "audience", "ZZZZ")
    assert missing.exit_code == 1 and missing.stderr == "error: room ZZZZ not found\n"
    bad = await roomctl("rooms", "audience", code, "--cursor", "12")
    assert bad.exit_code == 2 and "not an audience cursor" in bad.stderr
    plain_room = (await store.create_room("Bob")).room_code
    none = await roomctl("rooms", "audience", plain_room)
    assert none.exit_code == 0 and none.stderr == f"room {plain_room} was created without an audience\n"


async def test_ten_thousand_viewers(roomctl: Roomctl, store: RoomStore) -> None:
    """AUDIENCE_MAX viewers: read in HSCAN chunks, every one listed once, oldest first, the page cut at --limit."""
    code = await audience_room(store)
    for _ in range(AUDIENCE_MAX // 500):
        await asyncio.gather(*(admit(store, code, "Viewer") for _ in range(500)))
    full = await roomctl("rooms", "audience", code, "--limit", "10000", "--json")
    everyone = as_json(full)["viewers"]
    assert len(everyone) == len({v["id"] for v in everyone}) == AUDIENCE_MAX
    assert [v["joinedAt"] for v in everyone] == sorted(v["joinedAt"] for v in everyone)
    first = as_json(await roomctl("rooms", "audience", code, "--json"))  # the default page: 100
    assert first["viewers"] == everyone[:100] and first["audience"]["admitted"] == AUDIENCE_MAX
    second = as_json(await roomctl("rooms", "audience", code, "--cursor", first["nextCursor"], "--json"))
    assert second["viewers"] == everyone[100:200]
    refused = await store.client.hlen(store.keys.audience(code))
    assert refused == AUDIENCE_MAX


# -- rooms poll --------------------------------------------------------------------------------


async def test_poll_shows_the_current_poll(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    viewer = await admit(store, code, "Zoe")
    none = await roomctl("rooms", "poll", code)
    assert none.exit_code == 0 and none.stdout == "" and none.stderr == f"room {code} has had no poll\n"
    assert as_json(await roomctl("rooms", "poll", code, "--json")) == {"code": code, "poll": None}
    await store.open_poll(code, None, "q1", ["Yes", "No"], prompt="Best?", public=True)
    await store.vote(code, viewer, "q1", "No")
    shown = as_json(await roomctl("rooms", "poll", code, "--json"))
    assert shown["poll"] == {"pollId": "q1", "prompt": "Best?", "choices": ["Yes", "No"], "publicTallies": True,
                             "open": True, "counts": {"Yes": 0, "No": 1}, "votes": 1}  # fmt: skip
    await store.close_poll(code, None, "q1")
    plain = (await roomctl("rooms", "poll", code)).stdout.splitlines()
    assert plain[:5] == ["poll\tq1", "prompt\tBest?", "state\tclosed", "tallies\tpublic (everyone sees them)",
                         "votes\t1"]  # fmt: skip
    assert plain[-3:] == ["CHOICE\tVOTES\tSHARE", "Yes\t0\t0%", "No\t1\t100%"]
    missing = await roomctl("rooms", "poll", "ZZZZ")
    assert missing.exit_code == 1 and missing.stderr == "error: room ZZZZ not found\n"


async def test_on_a_terminal_the_titles_count_the_audience(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    zoe = await admit(store, code, "[bold]Zoé")
    await store.lock_audience(code, None, True)
    await store.open_poll(code, None, "q1", ["Yes", "No"])
    await store.vote(code, zoe, "q1", "Yes")
    listed = await roomctl("rooms", "audience", code, env=TERMINAL)
    assert f"Audience of room {code} (0 connected, 1 admitted, locked)" in listed.stdout
    assert "[bold]Zoé" in listed.stdout  # names are text, never markup
    poll = await roomctl("rooms", "poll", code, env=TERMINAL)
    assert "Counts" in poll.stdout and "100%" in poll.stdout and "host only" in poll.stdout


# -- kick and audience-lock: the host's own scripts, administrator as actor --------------------


async def next_message(pubsub) -> tuple[BusMessage, dict]:
    """The next bus message on a subscribed channel (its routing, its frame), within 10 s."""
    async with asyncio.timeout(10):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                frame = frame_of(message["data"])
                assert frame is not None
                return BusMessage.decode(message["data"]), frame


async def test_kick_a_viewer(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    zoe = await admit(store, code, "Zoe")
    bob = await admit(store, code, "Bob")
    pubsub = store.client.pubsub()
    await pubsub.subscribe(store.keys.channel(code))
    try:
        kicked = as_json(await roomctl("rooms", "kick", code.lower(), "--yes", "--json", "--", zoe))
        assert kicked == {"kicked": zoe, "roomCode": code, "role": "viewer", "newHostId": None, "roomDeleted": False}
        message, frame = await next_message(pubsub)
    finally:
        await pubsub.aclose()
    assert (frame["event"], frame["data"]) == ("audience:kicked", {"audienceId": zoe})
    assert (message.aud, message.to) == (2, frozenset({zoe}))  # to that viewer alone, whose sockets close
    assert message.close is not None
    assert await Overview(store.client).viewer(code, zoe) is None  # its token is dead: connect and rejoin check
    assert [v["id"] for v in (await Overview(store.client).viewers(code)).viewers] == [bob]
    refused = await roomctl("users", "kick", code, "--", bob, input="n\n")
    assert refused.exit_code == 1 and f"Kick viewer {bob} from room {code}?" in refused.stderr
    done = await roomctl("users", "kick", code, "--", bob, input="y\n")
    assert done.exit_code == 0 and done.stdout == f"viewer {bob} kicked from room {code}\n"


async def test_kick_still_kicks_members_in_an_audience_room(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana", options=RoomOptions(audience=True))
    player = await store.join_room(host.room_code, "Bob")
    kicked = as_json(await roomctl("rooms", "kick", host.room_code, "--yes", "--json", "--", player.user_id))
    assert kicked["role"] == "member" and await store.get_user(host.room_code, player.user_id) is None
    nobody = await roomctl("rooms", "kick", host.room_code, "--yes", "nobody")
    assert nobody.exit_code == 1
    assert nobody.stderr == f"error: user nobody is neither a member nor a viewer of room {host.room_code}\n"
    gone = await roomctl("rooms", "kick", "ZZZZ", "--yes", "nobody")
    assert gone.exit_code == 1 and gone.stderr == "error: room ZZZZ not found\n"


async def test_audience_lock(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    pubsub = store.client.pubsub()
    await pubsub.subscribe(store.keys.channel(code))
    try:
        locked = as_json(await roomctl("rooms", "audience-lock", code, "--on", "--json"))
        assert locked == {"code": code, "audienceLocked": True}
        message, frame = await next_message(pubsub)
        assert (frame["event"], frame["data"]) == ("audience:lock_updated", {"locked": True})  # members see it live
        assert message.aud == 0  # the members only
    finally:
        await pubsub.aclose()
    shown = as_json(await roomctl("rooms", "show", code, "--json"))["room"]
    assert shown["audienceLocked"] is True
    assert (
        "audience\t0 connected / 0 admitted, locked (no new viewers)"
        in (await roomctl("rooms", "show", code)).stdout.splitlines()
    )
    unlocked = await roomctl("rooms", "audience-lock", code.lower(), "--off")
    assert unlocked.exit_code == 0 and unlocked.stdout == f"audience of room {code} is unlocked\n"
    assert (await store.get_room(code))["audienceLocked"] is False


async def test_audience_lock_errors(roomctl: Roomctl, store: RoomStore) -> None:
    code = (await store.create_room("Ana")).room_code
    disabled = await roomctl("rooms", "audience-lock", code, "--on")
    assert disabled.exit_code == 1 and disabled.stderr == f"error: room {code} was created without an audience\n"
    missing = await roomctl("rooms", "audience-lock", "ZZZZ", "--off")
    assert missing.exit_code == 1 and missing.stderr == "error: room ZZZZ not found\n"
    neither = await roomctl("rooms", "audience-lock", code)
    assert neither.exit_code == 2 and "--on" in neither.stderr


# -- events and completion ---------------------------------------------------------------------


async def test_events_say_which_frames_the_audience_gets(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana", options=RoomOptions(audience=True))
    code, h = host.room_code, host.user_id
    zoe = await admit(store, code, "Zoe")
    async with following(roomctl, store, code, "--json", "--count", "3") as task:
        await store.open_poll(code, h, "q1", ["Yes", "No"])
        await store.send_game_message(code, h, "audience", "hint", json.dumps("look left"))
        await store.kick(code, None, zoe)
        result = await asyncio.wait_for(task, 10)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["event"], e.get("aud"), e.get("to")) for e in lines] == [
        ("poll:opened", 1, None),  # members and every viewer
        ("game:message", 2, None),  # every viewer, no member
        ("audience:kicked", 2, [zoe]),  # that viewer alone
    ]
    async with following(roomctl, store, code, "--count", "1") as task:
        await store.send_game_message(code, h, "audience", "hint", json.dumps("look right"))
        text = await asyncio.wait_for(task, 10)
    assert text.stdout.split("\t")[2] == f'hint from {h} → the audience: "look right"\n'


async def test_kick_completes_member_and_viewer_ids(redis_server, store: RoomStore) -> None:
    host = await store.create_room("Ana", options=RoomOptions(audience=True))
    zoe = await admit(store, host.room_code, "Zoe")
    line = f"roomctl --env-file '' --redis-url {redis_server.url} rooms kick {host.room_code} "
    offered = await asyncio.to_thread(complete, "bash", line)
    assert offered.stdout.splitlines() == [f"plain,{host.user_id}", f"plain,{zoe}"]  # members first
    described = await asyncio.to_thread(complete, "zsh", line + zoe[:3])
    assert "Zoe (viewer)" in described.stdout.splitlines()


async def test_audience_reads_work_under_a_read_only_acl(private_redis) -> None:
    """A monitoring user limited to read commands sees the audience and the poll (roomctl's reads only read)."""
    server = private_redis()
    admin = make_redis_client(server.url, command_timeout=5)
    try:
        await admin.execute_command("ACL", "SETUSER", "monitor", "on", ">pw", "~*", "&*", "+@read", "+@connection",
                                    "+@pubsub", "-@write", "-@admin", "-@dangerous")  # fmt: skip
        store = RoomStore(admin, ttl_seconds=600)
        code = await audience_room(store)
        zoe = await admit(store, code, "Zoe")
        await live(store)
        await connect_viewers(store, code, INSTANCE, zoe)
        await store.open_poll(code, None, "q1", ["Yes", "No"])
        await store.vote(code, zoe, "q1", "Yes")
        url = server.url.replace("redis://", "redis://monitor:pw@")

        async def ctl(*args: str) -> dict:
            return as_json(await asyncio.to_thread(invoke, "--redis-url", url, *args, "--json"))

        assert (await ctl("rooms", "list"))["rooms"][0]["audienceConnected"] == 1
        assert (await ctl("rooms", "show", code))["poll"]["counts"] == {"Yes": 1, "No": 0}
        assert [v["id"] for v in (await ctl("rooms", "audience", code))["viewers"]] == [zoe]
        assert (await ctl("rooms", "poll", code))["poll"]["votes"] == 1
    finally:
        await admin.aclose()


# -- live: roomd processes with a host and a viewer connected ---------------------------------


async def test_live_kick_and_audience_lock_reach_viewers_and_members(
    redis_server, spawn_roomd, api: Api, roomd
) -> None:
    other: RoomdProcess = spawn_roomd()
    host = await api.create("Ana", audience=True)
    code = host["roomCode"]
    admitted = await http(roomd.http, "POST", f"/rooms/{code}/audience", {"displayName": "Zoe"})
    assert admitted.status == 201, admitted.body
    viewer = admitted.body
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    vs = await Socket.connect(other.ws, viewer["token"])  # the viewer on another roomd process
    assert (await vs.expect("room:state"))["you"]["audienceId"] == viewer["audienceId"]
    shown = await live_roomctl(redis_server, "rooms", "show", code, "--json")
    assert (shown["room"]["audienceConnected"], shown["room"]["audienceAdmitted"]) == (1, 1)
    kicked = await live_roomctl(redis_server, "rooms", "kick", code, "--yes", "--json", "--", viewer["audienceId"])
    assert kicked["role"] == "viewer"
    assert await vs.expect("audience:kicked") == {"audienceId": viewer["audienceId"]}
    assert await vs.closed() == 4403
    assert (await api.rejoin(code, viewer["token"])).status == 404  # its token died
    locked = await live_roomctl(redis_server, "rooms", "audience-lock", code, "--on", "--json")
    assert locked == {"code": code, "audienceLocked": True}
    seen = []  # the host's frames up to the lock, published after the kick on the same channel
    while not seen or seen[-1]["event"] != "audience:lock_updated":
        seen.append(await hs.next_event())
    assert seen[-1]["data"] == {"locked": True}
    assert "audience:kicked" not in [f["event"] for f in seen]  # the members never see a viewer's kick
    late = await http(roomd.http, "POST", f"/rooms/{code}/audience", {"displayName": "Late"})
    assert (late.status, late.body["code"]) == (400, "AUDIENCE_LOCKED")


async def live_roomctl(redis: RedisServer, *args: str) -> dict:
    """The installed console script against the roomd processes' Redis; its JSON output."""
    status, out = await run_roomctl(redis, *args)
    assert status == 0, out
    return json.loads(out)


async def test_audience_on_a_cluster(redis_cluster: ClusterServers) -> None:
    """The audience read on a Redis Cluster: live instances (one slot) and each room's keys (its own) in one
    pipeline, viewers with HSCAN on the room's master, a viewer's kick and the audience lock as scripts."""
    target = target_from_settings(from_env(redis_cluster.env()))
    client: Any = target.command_client(command_timeout=5, connect_timeout=2)
    try:
        store = RoomStore(client, ttl_seconds=600, sharded_pubsub=True)
        codes = [await audience_room(store) for _ in range(3)]  # rooms on several masters, most likely
        viewers = {code: [await admit(store, code, f"V{n}") for n in range(3)] for code in codes}
        await live(store)
        for code in codes:
            await connect_viewers(store, code, INSTANCE, *viewers[code][:2])
        await store.open_poll(codes[0], None, "q1", ["Yes", "No"])
        await store.vote(codes[0], viewers[codes[0]][0], "q1", "No")
        env: dict[str, str | None] = {**redis_cluster.env()}

        def ctl(*args: str) -> dict:
            return as_json(invoke("--json", *args, env=env))

        listed = await asyncio.to_thread(ctl, "rooms", "list", "--with-audience")
        assert {(r["code"], r["audienceConnected"], r["audienceAdmitted"]) for r in listed["rooms"]} == {
            (code, 2, 3) for code in codes
        }
        page = await asyncio.to_thread(ctl, "rooms", "audience", codes[1])
        # Oldest first; viewers admitted within the same millisecond are ordered by id.
        assert sorted(v["id"] for v in page["viewers"]) == sorted(viewers[codes[1]])
        assert page["viewers"] == sorted(page["viewers"], key=lambda v: (v["joinedAt"], v["id"]))
        assert (await asyncio.to_thread(ctl, "rooms", "poll", codes[0]))["poll"]["counts"] == {"Yes": 0, "No": 1}
        kicked = await asyncio.to_thread(ctl, "rooms", "kick", codes[2], "--yes", "--", viewers[codes[2]][2])
        assert kicked["role"] == "viewer"
        assert (await asyncio.to_thread(ctl, "rooms", "audience-lock", codes[2], "--on"))["audienceLocked"] is True
        shown = await asyncio.to_thread(ctl, "rooms", "show", codes[2])
        assert (shown["room"]["audienceAdmitted"], shown["room"]["audienceLocked"]) == (2, True)
    finally:
        await client.aclose()
