"""``roomctl rooms state``: a room's shared state entries with their values, as an administrator sees them.

The administrator sees every entry whatever its ``visibleTo`` (players see only
the entries they may read). Entries are read with :meth:`RoomStore.get_state`, the
one reader of the state keys, so roomctl never names a key itself. ``rooms show``
lists the same entries without their values (:func:`entry_rows`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from roomctl.connection import Backend
from roomctl.context import NOT_FOUND, ROOM_CODE, Command, Ctl, StrParam, common_options, pass_ctl
from roomctl.output import write_line
from roomd.protocol import NAME_PATTERN

Entries = dict[str, dict[str, Any]]  # key -> {value, version, visibleTo, writableBy, size}

ENTRY_COLUMNS = ["KEY", "SIZE", "VERSION", "VISIBLE TO", "WRITABLE BY"]
VALUE_COLUMNS = ["KEY", "VERSION", "VALUE"]


class StateKey(StrParam):
    """A state key as roomd accepts them: 1-64 of ``A-Z a-z 0-9 _ . : -`` (case-sensitive)."""

    name = "KEY"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        key = str(value)
        if not NAME_PATTERN.fullmatch(key):
            self.fail(f"{value!r} is not a state key (1-64 letters, digits, _ . : -)", param, ctx)
        return key


STATE_KEY = StateKey()


def rule(value: Any) -> str:
    """A ``visibleTo`` / ``writableBy`` rule on one line: ``all``, ``host``, or the user ids."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "(nobody but the host)"
    return str(value)


def compact(value: Any) -> str:
    """A value as one line of JSON (non-ASCII kept readable)."""
    return json.dumps(value, ensure_ascii=False)


def entry_meta(entries: Entries) -> list[dict[str, Any]]:
    """The entries without their values, by key: ``rooms show --json``'s ``state``."""
    fields = ("size", "version", "visibleTo", "writableBy")
    return [{"key": key, **{f: e[f] for f in fields}} for key, e in sorted(entries.items())]


def entry_rows(entries: Entries) -> list[tuple[str, ...]]:
    """The rows of ``rooms show``'s state table, by key."""
    return [
        (m["key"], str(m["size"]), str(m["version"]), rule(m["visibleTo"]), rule(m["writableBy"]))
        for m in entry_meta(entries)
    ]


async def read_state(b: Backend, code: str) -> Entries:
    """Every entry of a live room; ROOM_NOT_FOUND (exit 1) if the room is gone.

    The room is checked first: a room without entries and a missing room both read as
    no entries from the state keys alone.
    """
    await b.store.get_room(code)
    return await b.store.get_state(code)


@click.command("state", cls=Command)
@click.argument("code", type=ROOM_CODE)
@click.argument("key", type=STATE_KEY, required=False)
@common_options
@pass_ctl
def rooms_state(ctl: Ctl, code: str, key: str | None) -> None:
    """A room's shared state values: every entry, or the value of KEY.

    An administrator sees every entry, whatever its visibleTo. With KEY, the value alone
    is printed as JSON (pretty on a terminal, one line when piped: ready for jq); exit 1
    if the room or the key does not exist.

    \b
    Examples:
      roomctl rooms state KXQD
      roomctl rooms state kxqd prompt | jq -r .text
      roomctl rooms state KXQD --json | jq '.state | keys'
      roomctl rooms state KXQD scores --json | jq .version
    """
    entries = ctl.run(lambda b: read_state(b, code), room=code)
    if key is not None:
        _show_one(ctl, code, key, entries)
        return
    if ctl.out.as_json:
        ctl.out.data({"code": code, "state": dict(sorted(entries.items()))})
        return
    rows = [(k, str(e["version"]), compact(e["value"])) for k, e in sorted(entries.items())]
    ctl.out.table(f"State of room {code} ({len(rows)} entries)", VALUE_COLUMNS, rows)


def _show_one(ctl: Ctl, code: str, key: str, entries: Entries) -> None:
    entry = entries.get(key)
    if entry is None:
        ctl.fail(f"room {code} has no state entry {key!r}", NOT_FOUND)
    if ctl.out.as_json:
        ctl.out.data({"code": code, "key": key, **entry})
    else:  # the value alone, for jq: pretty for a person, one line for a pipe
        indent = 2 if ctl.out.terminal else None
        write_line(sys.stdout, json.dumps(entry["value"], ensure_ascii=False, indent=indent))
