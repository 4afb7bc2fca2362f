"""roomctl and the audience (issue 13): rooms show, list, audience, poll, kick, audience-lock on the private Redis."""

from __future__ import annotations

import asyncio
import json

from roomd.domain.overview import Overview
from roomd.domain.store import RoomStore, now_ms
from tests.roomctl.conftest import Roomctl, as_json

INSTANCE = "test-host:1:8000:aaaa"


# -- set-up (to be replaced by the store's own methods) ---------------------------------------


async def audience_room(store: RoomStore, host: str = "Ana") -> str:
    code = (await store.create_room(host)).room_code
    raw = await store.client.get(store.keys.room(code))
    room = json.loads(raw)
    room.update(audience=True, audienceLocked=False, audienceCount=0)
    await store.client.set(store.keys.room(code), json.dumps(room), keepttl=True)
    return code


async def admit(store: RoomStore, code: str, name: str, joined: int | None = None) -> str:
    audience_id = f"v{len(await store.client.hkeys(store.keys.audience(code))):04d}x{name[:3]}"
    record = {"id": audience_id, "displayName": name, "joinedAt": joined or now_ms()}
    await store.client.hset(store.keys.audience(code), audience_id, json.dumps(record))
    return audience_id


async def online(store: RoomStore, code: str, instance: str, count: int) -> None:
    await store.client.hset(store.keys.audience_online(code), instance, count)


async def live(store: RoomStore, instance: str = INSTANCE) -> None:
    store.instance_id = instance
    await store.heartbeat()
    store.instance_id = ""


async def open_poll(store: RoomStore, code: str, poll_id: str, choices: list[str], public: bool = False) -> None:
    fields = {"id": poll_id, "choices": json.dumps(choices), "prompt": "Best?", "public": "1" if public else "0",
              "open": "1", "tallyAt": "0", "dirty": "0"}  # fmt: skip
    await store.client.delete(store.keys.poll_votes(code), store.keys.poll_counts(code))
    await store.client.hset(store.keys.poll(code), mapping=fields)


async def vote(store: RoomStore, code: str, audience_id: str, choice: str) -> None:
    old = await store.client.hget(store.keys.poll_votes(code), audience_id)
    if old is not None:
        await store.client.hincrby(store.keys.poll_counts(code), old, -1)
    await store.client.hset(store.keys.poll_votes(code), audience_id, choice)
    await store.client.hincrby(store.keys.poll_counts(code), choice, 1)


async def close_poll(store: RoomStore, code: str) -> None:
    await store.client.hset(store.keys.poll(code), "open", "0")


# -- rooms show / list -------------------------------------------------------------------------


async def test_show_counts_the_audience_on_live_instances(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    for name in ("Zoe", "Yann", "Xia"):
        await admit(store, code, name)
    await live(store)
    await online(store, code, INSTANCE, 2)
    await online(store, code, "dead-host:9:8000:bbbb", 5)  # no heartbeat: its viewers are gone
    shown = as_json(await roomctl("rooms", "show", code, "--json"))
    room = shown["room"]
    assert (room["audience"], room["audienceLocked"], room["audienceConnected"], room["audienceAdmitted"]) == (
        True, False, 2, 3,
    )  # fmt: skip
    assert shown["poll"] is None
    lines = (await roomctl("rooms", "show", code)).stdout.splitlines()
    assert "audience\t2 connected / 3 admitted, open" in lines
    assert not any(line.startswith("poll\t") for line in lines)  # no poll: no poll line


async def test_show_without_an_audience(roomctl: Roomctl, store: RoomStore) -> None:
    code = (await store.create_room("Ana")).room_code
    shown = as_json(await roomctl("rooms", "show", code, "--json"))
    assert (shown["room"]["audience"], shown["room"]["audienceConnected"], shown["poll"]) == (False, 0, None)
    assert "audience\toff" in (await roomctl("rooms", "show", code)).stdout.splitlines()


async def test_show_has_the_poll_with_its_counts(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    viewers = [await admit(store, code, f"V{n}") for n in range(3)]
    await open_poll(store, code, "q1", ["Red", "Blue", "Green"])
    await vote(store, code, viewers[0], "Blue")
    await vote(store, code, viewers[1], "Blue")
    await vote(store, code, viewers[2], "Red")
    await vote(store, code, viewers[2], "Blue")  # changed its mind
    shown = as_json(await roomctl("rooms", "show", code, "--json"))
    assert shown["poll"]["counts"] == {"Red": 0, "Blue": 3, "Green": 0} and shown["poll"]["votes"] == 3
    assert list(shown["poll"]["counts"]) == ["Red", "Blue", "Green"]  # the poll's order
    assert "poll\tq1 open: Red 0, Blue 3, Green 0 (3 votes)" in (await roomctl("rooms", "show", code)).stdout


async def test_list_has_an_audience_column_and_filter(roomctl: Roomctl, store: RoomStore) -> None:
    plain = (await store.create_room("Bob")).room_code
    await asyncio.sleep(0.003)
    code = await audience_room(store)
    await admit(store, code, "Zoe")
    await live(store)
    await online(store, code, INSTANCE, 1)
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
    base = now_ms()
    ids = [await admit(store, code, f"Viewer{n}", base + n) for n in range(5)]
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


async def test_ten_thousand_viewers_are_read_in_chunks(store: RoomStore, redis_client) -> None:
    code = await audience_room(store)
    base = now_ms()
    async with redis_client.pipeline(transaction=False) as pipe:
        for n in range(10_000):
            record = {"id": f"id{n:05d}", "displayName": f"V{n}", "joinedAt": base + n}
            pipe.hset(store.keys.audience(code), f"id{n:05d}", json.dumps(record))
        await pipe.execute()
    page = await Overview(redis_client).viewers(code, 10_000)
    assert len(page.viewers) == 10_000 and page.next_cursor is None
    assert [v["id"] for v in page.viewers[:2]] == ["id00000", "id00001"]
    first = await Overview(redis_client).viewers(code, 100)
    assert len(first.viewers) == 100 and first.next_cursor == f"{base + 99}.id00099"


# -- rooms poll --------------------------------------------------------------------------------


async def test_poll_shows_the_current_poll(roomctl: Roomctl, store: RoomStore) -> None:
    code = await audience_room(store)
    viewer = await admit(store, code, "Zoe")
    none = await roomctl("rooms", "poll", code)
    assert none.exit_code == 0 and none.stdout == "" and none.stderr == f"room {code} has had no poll\n"
    assert as_json(await roomctl("rooms", "poll", code, "--json")) == {"code": code, "poll": None}
    await open_poll(store, code, "q1", ["Yes", "No"], public=True)
    await vote(store, code, viewer, "No")
    shown = as_json(await roomctl("rooms", "poll", code, "--json"))
    assert shown["poll"] == {"pollId": "q1", "prompt": "Best?", "choices": ["Yes", "No"], "publicTallies": True,
                             "open": True, "counts": {"Yes": 0, "No": 1}, "votes": 1, "tallyAt": None}  # fmt: skip
    await close_poll(store, code)
    plain = (await roomctl("rooms", "poll", code)).stdout.splitlines()
    assert plain[:3] == ["poll\tq1", "prompt\tBest?", "state\tclosed"]
    assert plain[-3:] == ["CHOICE\tVOTES\tSHARE", "Yes\t0\t0%", "No\t1\t100%"]
    missing = await roomctl("rooms", "poll", "ZZZZ")
    assert missing.exit_code == 1 and missing.stderr == "error: room ZZZZ not found\n"
