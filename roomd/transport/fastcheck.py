"""Hand-written checks of the hot client frames, equivalent to their JSON Schemas.

jsonschema costs ~60-200 µs per frame here (a relayed game message has two
frames: the player's ``game:send`` and the host's ``state:set``), and the
per-text verdict cache of :class:`~roomd.transport.commands.Command` never hits
for game frames: their ``data``, ``value`` and ``id`` differ every time. These
functions decide the same question with a few ``isinstance`` and key-set tests
on the parsed frame (``data``/``value`` stay opaque beyond ``json.loads``).

The schemas in ``protocol/schemas/client/`` stay the contract:

* a check only ever says *valid*; when it says no, the caller runs the schema,
  whose first error is the message the client gets (the same text as before),
  and whose verdict wins if the two disagree;
* ``tests/unit/test_fast_validation.py`` runs a generated corpus of valid and
  invalid frames through both and asserts identical verdicts, and fails when a
  fast-checked schema changes (its fingerprint), so the two cannot drift apart.

Events without an entry here are validated by their schema alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from roomd import protocol

Check = Callable[[dict[str, Any]], bool]
"""``check(frame)``: True when the parsed frame (a dict) is valid for its event."""

# Patterns exactly as the schemas write them, applied as jsonschema applies "pattern" (re.search):
# ``$`` also matches before a final newline there, so this must too.
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$").search

_ENVELOPE = frozenset(("event", "data", "id"))
_GAME_SEND = frozenset(("to", "type", "data"))
_STATE_SET = frozenset(("key", "value", "visibleTo", "writableBy", "ifVersion"))
_STATE_DELETE = frozenset(("key", "ifVersion"))


def _enum(schema_file: str, field: str) -> frozenset[str]:
    """The names a ``data`` field's ``oneOf`` enumerates, read from the schema itself.

    Recipient names grow (``"audience"``...): taking them from the schema keeps one
    list, the contract's; the structure around them is what this module copies.
    """
    schema: Any = protocol.validator(f"client/{schema_file}").schema
    branches = schema["properties"]["data"]["properties"][field]["oneOf"]
    names = next(branch["enum"] for branch in branches if "enum" in branch)
    if not all(isinstance(name, str) for name in names):
        raise RuntimeError(f"client/{schema_file}: {field} lists a non-string; update roomd/transport/fastcheck.py")
    return frozenset(names)


_GAME_TO = _enum("game.send.json", "to")
_VISIBLE_TO = _enum("state.set.json", "visibleTo")
_WRITABLE_BY = _enum("state.set.json", "writableBy")


def _envelope(frame: dict[str, Any]) -> bool:
    """No property but event/data/id; ``id`` a string of at most 128 characters or an integer."""
    if not frame.keys() <= _ENVELOPE:
        return False
    if "id" in frame:
        msg_id = frame["id"]
        if isinstance(msg_id, str):
            return len(msg_id) <= 128
        return isinstance(msg_id, int) and not isinstance(msg_id, bool)
    return True


def _user_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 64


def _user_ids(value: list[Any]) -> bool:
    """1-100 distinct strings of 1-64 characters (the schemas' recipient lists)."""
    if not 1 <= len(value) <= 100:
        return False
    for item in value:
        if not isinstance(item, str) or not 1 <= len(item) <= 64:
            return False
    return len(set(value)) == len(value)


def _audience(value: Any, names: frozenset[str]) -> bool:
    """``oneOf: [{enum: names}, {user id list}]``: the branches exclude each other (string vs array)."""
    if isinstance(value, str):
        return value in names
    return isinstance(value, list) and _user_ids(value)


def _version(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _name(value: Any) -> bool:
    return isinstance(value, str) and _NAME(value) is not None


def game_send(frame: dict[str, Any]) -> bool:
    """``game.send.json``: data {type, to?, data?} required."""
    if not _envelope(frame):
        return False
    data = frame.get("data")
    if not isinstance(data, dict) or not data.keys() <= _GAME_SEND:
        return False
    if "type" not in data or not _name(data["type"]):
        return False
    return "to" not in data or _audience(data["to"], _GAME_TO)


def state_set(frame: dict[str, Any]) -> bool:
    """``state.set.json``: data {key, value, visibleTo?, writableBy?, ifVersion?} required."""
    if not _envelope(frame):
        return False
    data = frame.get("data")
    if not isinstance(data, dict) or not data.keys() <= _STATE_SET:
        return False
    if "value" not in data or "key" not in data or not _name(data["key"]):
        return False
    if len(data) == 2:  # the common case: key and value only
        return True
    if "visibleTo" in data and not _audience(data["visibleTo"], _VISIBLE_TO):
        return False
    if "writableBy" in data and not _audience(data["writableBy"], _WRITABLE_BY):
        return False
    return "ifVersion" not in data or _version(data["ifVersion"])


def state_delete(frame: dict[str, Any]) -> bool:
    """``state.delete.json``: data {key, ifVersion?} required."""
    if not _envelope(frame):
        return False
    data = frame.get("data")
    if not isinstance(data, dict) or not data.keys() <= _STATE_DELETE:
        return False
    if "key" not in data or not _name(data["key"]):
        return False
    return "ifVersion" not in data or _version(data["ifVersion"])


def no_data(frame: dict[str, Any]) -> bool:
    """``room.toggle_lock/leave/close.json``: data optional, and an empty object when present."""
    if not _envelope(frame):
        return False
    if "data" not in frame:
        return True
    data = frame["data"]
    return isinstance(data, dict) and not data


def _one_user(field: str) -> Check:
    """``room.kick.json`` / ``room.transfer_host.json``: data {<field>: user id} required."""
    allowed = frozenset((field,))

    def check(frame: dict[str, Any]) -> bool:
        if not _envelope(frame):
            return False
        data = frame.get("data")
        return isinstance(data, dict) and data.keys() == allowed and _user_id(data[field])

    check.__name__ = check.__qualname__ = f"one_user_{field}"
    return check


CHECKS: dict[str, Check] = {
    "game:send": game_send,
    "state:set": state_set,
    "state:delete": state_delete,
    "room:toggle_lock": no_data,
    "room:leave": no_data,
    "room:close": no_data,
    "room:kick": _one_user("kickUserId"),
    "room:transfer_host": _one_user("newHostId"),
}
"""Event name -> its fast check (the event's schema file is named in each docstring)."""
