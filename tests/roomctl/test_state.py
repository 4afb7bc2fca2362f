"""roomctl and the game channel: state entries in ``rooms show``, values in ``rooms state``, game events in ``events``.

CliRunner against the private redis-server (entries written by the store's own scripts),
and one live test through real roomd processes for ``events``.
"""

from __future__ import annotations

import json

from roomd.domain.store import RoomStore
from tests.roomctl.conftest import Roomctl, as_json

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
