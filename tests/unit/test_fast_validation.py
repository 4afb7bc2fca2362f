"""The hand-written frame checks (roomd/transport/fastcheck.py) agree with the JSON Schemas.

The schemas in protocol/schemas/client/ are the contract. A generated corpus of
valid and invalid frames (wrong types, missing fields, extra properties, bounds,
unicode, trailing newlines) goes through both; every verdict must be identical.
A fast-checked schema that changes fails the fingerprint test, so nobody edits a
schema without looking at its fast check (and this corpus).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from roomd import protocol
from roomd.transport import commands, fastcheck

# sha256 of each fast-checked schema without its prose (title, description, $comment) and its
# enum lists (fastcheck reads those from the schema: adding a recipient name needs no edit there).
FINGERPRINTS = {
    "game:send": "90c5d28b87ac84481507735a558a98a9eca771a63559913a8887763807675231",
    "room:close": "57cd907b3fde4a128651fe1d18ad9ae5a1d3a6561e3b5ca547eb641a614b5198",
    "room:kick": "49a128671b9d4ddb579d570d0eff5f5cfc0432c7ba4e07f9b6c670fc8a71108c",
    "room:leave": "77608e19a40237d30bc0df740a0c653c1823cfe7a754f68dc70723251bf50bf9",
    "room:toggle_lock": "2f2efbc293e67b1a79a7871076ef0b7dd4951383caa601a901bb8caaff1cbdb8",
    "room:transfer_host": "d3bff95a1c05fa06298535a4f1220ae9e603ca10cea44b83ef73bde323f40646",
    "state:delete": "660c70888829297ddfcb7d53728b57595921babedf9d95d770a603764343b15a",
    "state:set": "9dace2e3915de1aafa59906e418eae972ad08260cc3cef2880b016d74bcd0479",
}

ABSENT = object()  # a field left out of the frame

IDS: list[Any] = [
    ABSENT, 0, 7, -3, 2**70, "", "a", "x" * 128, "x" * 129, "😀" * 128, "😀" * 129, "é" * 129,
    True, False, None, 1.0, 1.5, [], {}, ["a"],
]  # fmt: skip
USER_IDS: list[Any] = [
    ABSENT, "", "u", "x" * 64, "x" * 65, "😀" * 64, "😀" * 65, "a b", "\n", 0, 1, True, None, [], {}, ["u"], 1.5,
]  # fmt: skip
NAMES: list[Any] = [
    ABSENT, "", "a", "answer", "answer.3", "A-Z_a:z.0-9", "x" * 64, "x" * 65, "a b", "é", "\uff41", "\u0661", "a/b",
    "a\n", "\na", "a\nb", "a\r", "a\n\n", "x" * 64 + "\n", "x" * 65 + "\n", "a\t", "😀", 0, True, None, [], {},
    ["a"], 1.5,
]  # fmt: skip
VERSIONS: list[Any] = [ABSENT, 0, 1, 2**70, -1, -(2**70), 1.0, 0.5, -0.0, True, False, "1", None, [], {}]
ANY_VALUES: list[Any] = [
    ABSENT, None, 0, -1.5, True, "", "text", "😀", [], [1, [2, {"a": None}]], {}, {"p": 3, "t": 1234.5},
    {"nested": {"deep": [{"x": "y"}]}}, "x" * 5000,
]  # fmt: skip
MANY = [f"user{i}" for i in range(101)]


def audiences(names: list[str]) -> list[Any]:
    """Values for a ``oneOf: [{enum}, {array of user ids}]`` field."""
    return [
        ABSENT, *names, "audience", "Host", "ALL", "others", "nobody", "", "host ", 0, True, None, {}, {"host": 1},
        [], ["a"], ["a", "b"], ["a", "a"], ["a", "b", "a"], MANY[:100], MANY[:101], [*MANY[:99], "user0"],
        [""], ["x" * 64], ["x" * 65], ["😀" * 64], ["😀" * 65], [1], [None], [["a"]], ["a", 1], [True],
        ["host"], ["all"],
    ]  # fmt: skip


DATA_FIELDS: dict[str, dict[str, list[Any]]] = {
    "game:send": {
        "to": audiences(["host", "all", "others"]),
        "type": NAMES,
        "data": ANY_VALUES,
    },
    "state:set": {
        "key": NAMES,
        "value": ANY_VALUES,
        "visibleTo": audiences(["all", "host"]),
        "writableBy": audiences(["host", "all"]),
        "ifVersion": VERSIONS,
    },
    "state:delete": {"key": NAMES, "ifVersion": VERSIONS},
    "room:kick": {"kickUserId": USER_IDS},
    "room:transfer_host": {"newHostId": USER_IDS},
    "room:toggle_lock": {},
    "room:leave": {},
    "room:close": {},
}
VALID_DATA: dict[str, list[dict[str, Any]]] = {
    "game:send": [
        {"type": "answer"},
        {"type": "answer", "data": {"p": 3, "t": 1234.5}},
        {"to": "all", "type": "round", "data": None},
        {"to": ["u1", "u2"], "type": "x", "data": [1, 2]},
    ],
    "state:set": [
        {"key": "scores", "value": {"a": 1}},
        {"key": "answer.3", "value": None},
        {"key": "k", "value": 1, "visibleTo": ["u1"], "writableBy": "all", "ifVersion": 0},
        {"key": "k", "value": [], "visibleTo": "host", "writableBy": ["u1", "u2"], "ifVersion": 5},
    ],
    "state:delete": [{"key": "scores"}, {"key": "scores", "ifVersion": 3}],
    "room:kick": [{"kickUserId": "u1"}],
    "room:transfer_host": [{"newHostId": "u1"}],
    "room:toggle_lock": [{}],
    "room:leave": [{}],
    "room:close": [{}],
}
NOT_OBJECTS: list[Any] = [ABSENT, None, [], "x", 1, True, [{}]]
EXTRA_KEYS = ["extra", "Data", "", "id ", "event2", "😀"]


def _frame(event: str, data: Any = ABSENT, msg_id: Any = ABSENT, **extra: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"event": event}
    if data is not ABSENT:
        frame["data"] = data
    if msg_id is not ABSENT:
        frame["id"] = msg_id
    frame.update(extra)
    return frame


def _with(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed = dict(data)
    if value is ABSENT:
        changed.pop(key, None)
    else:
        changed[key] = value
    return changed


def corpus(event: str, randoms: int = 1500) -> Iterator[dict[str, Any]]:
    """Frames of ``event`` (dispatch guarantees ``event`` is the command's name), valid and invalid."""
    fields = DATA_FIELDS[event]
    valid = VALID_DATA[event]
    for data in valid:  # the envelope around valid data
        for msg_id in IDS:
            yield _frame(event, data, msg_id)
        for key in EXTRA_KEYS:
            yield _frame(event, data, 1, **{key: 1})
    for data in NOT_OBJECTS:  # data itself
        yield _frame(event, data)
        yield _frame(event, data, "id-1")
    for data in valid:  # one field at a time
        for key, values in fields.items():
            for value in values:
                yield _frame(event, _with(data, key, value))
                yield _frame(event, _with(data, key, value), 12)
        for key in EXTRA_KEYS:
            yield _frame(event, {**data, key: "x"})
    rng = random.Random(f"fast-validation {event}")  # reproducible
    for _ in range(randoms):  # combinations: each field present with a random value, or absent
        data = {}
        for key, values in fields.items():
            value = rng.choice(values)
            if value is not ABSENT:
                data[key] = value
        if rng.random() < 0.1:
            data[rng.choice(EXTRA_KEYS)] = rng.choice(ANY_VALUES[1:])
        msg_id = rng.choice(IDS) if rng.random() < 0.5 else ABSENT
        yield _frame(event, data if rng.random() < 0.95 else rng.choice(NOT_OBJECTS), msg_id)


def _as_received(frame: dict[str, Any]) -> dict[str, Any] | None:
    """The frame as roomd sees it: JSON text parsed by protocol.parse_json (None if it refuses it)."""
    try:
        parsed = protocol.parse_json(json.dumps(frame, ensure_ascii=False))
    except protocol.InvalidJson:
        return None
    assert isinstance(parsed, dict)
    return parsed


def _fingerprint(schema: Any) -> str:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: "<read by fastcheck>" if k == "enum" else strip(v)
                for k, v in node.items()
                if k not in ("title", "description", "$comment")
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return hashlib.sha256(json.dumps(strip(schema), sort_keys=True).encode()).hexdigest()


def _schema_file(event: str) -> Any:
    path = protocol.protocol_dir() / "schemas" / "client" / (event.replace(":", ".") + ".json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("event", sorted(fastcheck.CHECKS))
def test_fast_check_and_schema_agree(event: str) -> None:
    validator = protocol.client_event_validators()[event]
    check = fastcheck.CHECKS[event]
    seen = valid = 0
    disagreements = []
    for raw in corpus(event):
        frame = _as_received(raw)
        if frame is None:
            continue
        seen += 1
        schema_ok = protocol.first_error(validator, frame) is None
        valid += schema_ok
        if check(frame) != schema_ok:
            disagreements.append((schema_ok, frame))
    assert not disagreements, f"{len(disagreements)} disagreements, e.g. (schema valid?, frame): {disagreements[:3]}"
    # The corpus must exercise both verdicts substantially, or agreeing means little.
    assert seen > 500 and 50 < valid < seen - 200, (seen, valid)


@pytest.mark.parametrize("event", sorted(fastcheck.CHECKS))
def test_fast_checked_schemas_are_the_ones_checked_by_hand(event: str) -> None:
    assert _fingerprint(_schema_file(event)) == FINGERPRINTS[event], (
        f"protocol/schemas/client/{event.replace(':', '.')}.json changed: update its check in "
        "roomd/transport/fastcheck.py and the corpus in this file, then this fingerprint"
    )


def test_every_fast_check_is_wired_and_every_message_is_the_schemas() -> None:
    table = commands.build_table()
    for event, check in fastcheck.CHECKS.items():
        assert table[event].fast is check
    command = table["state:set"]
    bad = {"event": "state:set", "data": {"key": "a b", "value": 1}}
    expected = protocol.first_error(command.validator, bad)
    assert expected is not None and "does not match" in expected
    assert command.problem(json.dumps(bad), bad) == expected
    good = {"event": "state:set", "id": 3, "data": {"key": "a", "value": {"x": [1]}}}
    assert command.problem(json.dumps(good), good) is None


def test_the_schema_has_the_last_word() -> None:
    """A fast check that wrongly refused a frame would not cost the client its frame."""
    table = commands.build_table()
    command = commands.Command(table["room:kick"].validator, table["room:kick"].handler, fast=lambda frame: False)
    frame = {"event": "room:kick", "data": {"kickUserId": "u1"}}
    assert command.problem(json.dumps(frame), frame) is None
