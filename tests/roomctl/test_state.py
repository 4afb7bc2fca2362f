"""roomctl and the game channel: state entries in ``rooms show``, values in ``rooms state``, game events in ``events``.

CliRunner against the private redis-server (entries written by the store's own scripts),
and one live test through real roomd processes for ``events``.
"""

from __future__ import annotations

import asyncio
import json

from roomd.domain.store import RoomStore
from tests.roomctl.conftest import Roomctl, as_json
from tests.roomctl.test_live import following as following_process
from tests.roomctl.test_live import next_event
from tests.roomctl.test_stats_events import following
from tests.support.clients import Api, Socket

TERMINAL = {"TTY_COMPATIBLE": "1", "FORCE_COLOR": "1"}


async def game_room(store: RoomStore) -> tuple[str, str, str, str]:
    """A room with entries of every visibility: (code, host id, Bob's id, Chloé's id)."""
    host = await store.create_room("Ana")
    bob = await store.join_room(host.room_code, "Bob")
    chloe = await store.join_room(host.room_code, "Chloé")
    code = host.room_code
    await store.set_state(code, host.user_id, "scores", json.dumps({"Ana": 3, "Bob": 1}))
    await store.set_state(code, host.user_id, "answer:bob", "null", visible_to=[bob.user_id],
                          writable_by=[bob.user_id])  # fmt: skip
    await store.set_state(code, host.user_id, "secret", json.dumps("the cat did it"), visible_to="host")
    await store.set_state(code, bob.user_id, "answer:bob", json.dumps({"text": "Été, «ici»"}))  # Bob writes it
    return code, host.user_id, bob.user_id, chloe.user_id


# -- rooms show -------------------------------------------------------------------------------


async def test_show_lists_every_entry_without_values(roomctl: Roomctl, store: RoomStore) -> None:
    code, _, bob, _ = await game_room(store)
    state = await store.get_state(code)
    shown = as_json(await roomctl("rooms", "show", code, "--json"))
    answer_size = len(json.dumps({"text": "Été, «ici»"}))  # the value as encoded by the writer
    assert shown["state"] == [  # by key; the host-only entry too: roomctl is the administrator
        {"key": "answer:bob", "size": answer_size, "version": state["answer:bob"]["version"],
         "visibleTo": [bob], "writableBy": [bob]},
        {"key": "scores", "size": len('{"Ana": 3, "Bob": 1}'), "version": state["scores"]["version"],
         "visibleTo": "all", "writableBy": "host"},
        {"key": "secret", "size": len('"the cat did it"'), "version": state["secret"]["version"],
         "visibleTo": "host", "writableBy": "host"},
    ]  # fmt: skip
    assert "value" not in json.dumps(shown["state"])
    assert state["answer:bob"]["version"] > state["secret"]["version"] > state["scores"]["version"]
    plain = (await roomctl("rooms", "show", code)).stdout.splitlines()
    at = plain.index("KEY\tSIZE\tVERSION\tVISIBLE TO\tWRITABLE BY")
    assert plain[at + 1 :] == [
        f"answer:bob\t{shown['state'][0]['size']}\t{state['answer:bob']['version']}\t{bob}\t{bob}",
        f"scores\t20\t{state['scores']['version']}\tall\thost",
        f"secret\t16\t{state['secret']['version']}\thost\thost",
    ]
    assert "Été" not in "\n".join(plain)  # no value in rooms show


async def test_show_without_entries_has_no_state_table(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    assert as_json(await roomctl("rooms", "show", host.room_code, "--json"))["state"] == []
    plain = await roomctl("rooms", "show", host.room_code)
    assert plain.exit_code == 0 and "KEY\t" not in plain.stdout
    assert plain.stdout.splitlines()[-2:][0].startswith("ID\tDISPLAY NAME")  # the members table ends the output


async def test_show_on_a_terminal_titles_the_state_table(roomctl: Roomctl, store: RoomStore) -> None:
    code, *_ = await game_room(store)
    shown = await roomctl("rooms", "show", code, env=TERMINAL)
    assert "State entries (by key; 3," in shown.stdout and "WRITABLE BY" in shown.stdout


# -- rooms state ------------------------------------------------------------------------------


async def test_state_json_is_every_entry_with_its_value(roomctl: Roomctl, store: RoomStore) -> None:
    code, *_ = await game_room(store)
    state = await store.get_state(code)
    result = as_json(await roomctl("rooms", "state", code.lower(), "--json"))
    assert result == {"code": code, "state": state}
    assert list(result["state"]) == ["answer:bob", "scores", "secret"]
    assert result["state"]["secret"]["value"] == "the cat did it"  # visibleTo host: the administrator sees it
    assert result["state"]["answer:bob"]["value"] == {"text": "Été, «ici»"}


async def test_state_plain_is_a_table_of_values(roomctl: Roomctl, store: RoomStore) -> None:
    code, *_ = await game_room(store)
    state = await store.get_state(code)
    result = await roomctl("rooms", "state", code)
    assert result.exit_code == 0 and "\x1b[" not in result.output
    assert result.stdout.splitlines() == [
        "KEY\tVERSION\tVALUE",
        f'answer:bob\t{state["answer:bob"]["version"]}\t{{"text": "Été, «ici»"}}',
        f'scores\t{state["scores"]["version"]}\t{{"Ana": 3, "Bob": 1}}',
        f'secret\t{state["secret"]["version"]}\t"the cat did it"',
    ]


async def test_state_of_one_key(roomctl: Roomctl, store: RoomStore) -> None:
    code, *_ = await game_room(store)
    state = await store.get_state(code)
    piped = await roomctl("rooms", "state", code, "answer:bob")
    assert piped.exit_code == 0 and piped.stdout == '{"text": "Été, «ici»"}\n'  # the value alone: ready for jq
    one = as_json(await roomctl("rooms", "state", code, "answer:bob", "--json"))
    assert one == {"code": code, "key": "answer:bob", **state["answer:bob"]}
    assert set(one) == {"code", "key", "value", "version", "visibleTo", "writableBy", "size"}
    pretty = await roomctl("rooms", "state", code, "scores", env=TERMINAL)
    assert json.loads(pretty.stdout) == {"Ana": 3, "Bob": 1} and '\n  "Ana": 3' in pretty.stdout


async def test_state_of_an_empty_room(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    assert as_json(await roomctl("rooms", "state", host.room_code, "--json")) == {"code": host.room_code, "state": {}}
    assert (await roomctl("rooms", "state", host.room_code)).stdout == "KEY\tVERSION\tVALUE\n"


async def test_state_not_found_is_exit_1(roomctl: Roomctl, store: RoomStore) -> None:
    code, *_ = await game_room(store)
    missing_key = await roomctl("rooms", "state", code, "nope")
    assert missing_key.exit_code == 1 and missing_key.stderr == f"error: room {code} has no state entry 'nope'\n"
    assert missing_key.stdout == ""
    wrong_case = await roomctl("rooms", "state", code, "Scores", "--json")  # keys are case-sensitive
    assert wrong_case.exit_code == 1 and wrong_case.stdout == ""
    for args in (["ZZZZ"], ["ZZZZ", "scores"], ["ZZZZ", "--json"]):
        gone = await roomctl("rooms", "state", *args)
        assert gone.exit_code == 1 and gone.stderr == "error: room ZZZZ not found\n", args


async def test_state_bad_key_is_a_usage_error(roomctl: Roomctl, store: RoomStore) -> None:
    code, *_ = await game_room(store)
    for key in ("a b", "x" * 65, "é", "room:{x}"):
        result = await roomctl("rooms", "state", code, key)
        assert result.exit_code == 2 and "is not a state key" in result.stderr, key


# -- events -----------------------------------------------------------------------------------


async def test_events_json_shows_game_events_and_their_recipients(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    async with following(roomctl, store, host.room_code, "--json", "--count", "7") as task:
        _, h, b, c = await play_a_little_in(store, host.room_code, host.user_id)
        result = await asyncio.wait_for(task, 20)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    seqs = [e["data"]["version"] for e in lines if e["event"].startswith("state:")]
    assert [{k: v for k, v in e.items() if k != "ts"} for e in lines] == [
        {"event": "user:joined", "data": lines[0]["data"]},  # room events: as before, no routing fields
        {"event": "user:joined", "data": lines[1]["data"]},
        {"event": "game:message", "data": {"from": b, "type": "answer", "data": {"text": "cats"}}, "to": [h]},
        {"event": "game:message", "data": {"from": h, "type": "prompt", "data": "x" * 500}, "skip": h},
        {"event": "state:changed", "data": {"key": "answer:bob", "value": None, "version": seqs[0], "by": h},
         "to": sorted([h, b])},
        {"event": "state:deleted", "data": {"key": "answer:bob", "version": seqs[1], "by": h}, "to": [b]},
        {"event": "state:changed", "data": {"key": "answer:bob", "value": None, "version": seqs[2], "by": h},
         "to": [h]},
    ]  # fmt: skip
    assert c not in json.dumps(lines[2:])


async def play_a_little_in(store: RoomStore, code: str, h: str) -> tuple[str, str, str, str]:
    b = (await store.join_room(code, "Bob")).user_id
    c = (await store.join_room(code, "Chloé")).user_id
    await store.send_game_message(code, b, "host", "answer", json.dumps({"text": "cats"}))
    await store.send_game_message(code, h, "others", "prompt", json.dumps("x" * 500))
    await store.set_state(code, h, "answer:bob", "null", visible_to=[b], writable_by=[b])
    await store.set_state(code, h, "answer:bob", "null", visible_to="host")  # Bob loses sight of it: state:deleted
    await store.delete_state(code, None, "answer:bob")  # an administrator's delete: by ADMIN
    return code, h, b, c


async def test_events_text_shows_game_events_readably(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    async with following(roomctl, store, host.room_code, "--count", "8") as task:
        _, h, b, _ = await play_a_little_in(store, host.room_code, host.user_id)
        result = await asyncio.wait_for(task, 20)
    assert result.exit_code == 0 and "\x1b[" not in result.output
    rows = [line.split("\t")[1:] for line in result.stdout.splitlines()]
    assert [r[0] for r in rows] == ["user:joined"] * 2 + ["game:message"] * 2 + [
        "state:changed",
        "state:deleted",
        "state:changed",
        "state:deleted",
    ]
    assert json.loads(rows[0][1])["user"]["displayName"] == "Bob"  # other events: the data JSON, as before
    assert rows[2][1] == f'answer from {b} → {h}: {{"text": "cats"}}'
    assert rows[3][1] == f'prompt from {h} → everyone but {h}: "{"x" * 198}…'  # cut to 200 characters
    state = [r[1] for r in rows[4:]]
    versions = [s.split("(v")[1].split(" ")[0] for s in state]
    assert state == [
        f"answer:bob = null (v{versions[0]} by {h} → {', '.join(sorted([h, b]))})",
        f"answer:bob (v{versions[1]} by {h} → {b})",
        f"answer:bob = null (v{versions[2]} by {h} → {h})",
        f"answer:bob (v{versions[3]} by ADMIN → {h})",
    ]
    assert int(versions[0]) < int(versions[1]) < int(versions[2]) < int(versions[3])


async def test_events_all_shows_game_events_of_every_room(roomctl: Roomctl, store: RoomStore) -> None:
    first = await store.create_room("Ana")
    second = await store.create_room("Bob")
    task = asyncio.create_task(roomctl("events", "--all", "--json", "--count", "2"))
    for _ in range(500):
        if await store.client.pubsub_numpat() or task.done():
            break
        await asyncio.sleep(0.02)
    await store.set_state(first.room_code, first.user_id, "round", "1", visible_to="host")
    await store.send_game_message(second.room_code, second.user_id, "all", "tick", "{}")
    result = await asyncio.wait_for(task, 20)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["room"], e["event"], e.get("to")) for e in lines] == [
        (first.room_code, "state:changed", [first.user_id]),  # only the host may read it; roomctl sees it
        (second.room_code, "game:message", None),  # to "all": no routing field
    ]
    plain = asyncio.create_task(roomctl("events", "--all", "--count", "1"))
    for _ in range(500):
        if await store.client.pubsub_numpat() or plain.done():
            break
        await asyncio.sleep(0.02)
    await store.send_game_message(second.room_code, second.user_id, "all", "tick", "{}")
    cells = (await asyncio.wait_for(plain, 20)).stdout.rstrip("\n").split("\t")
    assert cells[1:] == [second.room_code, "game:message", f"tick from {second.user_id} → everyone: {{}}"]


async def test_events_live_show_what_players_send_through_roomd(redis_server, spawn_roomd, api: Api, roomd) -> None:
    """Through real roomd processes (host and player on two of them): what the sockets sent, and
    what each member received, is what roomctl shows, the private parts included."""
    other = spawn_roomd()
    host = await api.create("Ana")
    player = await api.join(host["roomCode"], "Bob")
    hs = await Socket.connect(roomd.ws, host["token"])
    await hs.expect("room:state")
    ps = await Socket.connect(other.ws, player["token"])
    await ps.expect("room:state")
    await hs.expect("user:connected")
    async with following_process(redis_server, host["roomCode"]) as proc:
        await ps.send("game:send", {"to": "host", "type": "answer", "data": {"text": "cats"}}, msg_id=1)
        message = await hs.expect("game:message")
        await hs.send("state:set", {"key": "secret", "value": {"who": "Bob"}, "visibleTo": "host"}, msg_id=2)
        secret = await hs.expect("state:changed")
        await hs.send("state:set", {"key": "prompt", "value": "Name a cat"}, msg_id=3)
        prompt = await ps.expect("state:changed")  # Bob never received the secret: prompt is his next one
        shown = [await next_event(proc) for _ in range(3)]
    assert message == {"from": player["userId"], "type": "answer", "data": {"text": "cats"}}
    assert [(e["event"], e["data"], e.get("to")) for e in shown] == [
        ("game:message", message, [host["userId"]]),
        ("state:changed", secret, [host["userId"]]),
        ("state:changed", prompt, None),
    ]
    assert secret["value"] == {"who": "Bob"} and prompt["value"] == "Name a cat"
