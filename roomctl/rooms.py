"""``roomctl rooms``: list, show, close, lock, unlock, transfer-host, extend.

``rooms audience``, ``poll`` and ``audience-lock`` live in :mod:`roomctl.audience`, ``rooms kick``
is ``users kick`` (:mod:`roomctl.users`), ``rooms state`` is :mod:`roomctl.state`.

Every action is the host's own store operation with actor None (the administrator),
so members see exactly what a host's action would show them.
"""

from __future__ import annotations

import shlex
from typing import Any

import click

from roomctl.connection import Backend
from roomctl.context import (
    DURATION,
    ROOM_CODE,
    USER,
    Ctl,
    Failure,
    Group,
    Span,
    common_options,
    pass_ctl,
    yes_option,
)
from roomctl.output import duration, now_ms
from roomctl.state import ENTRY_COLUMNS, Entries, entry_meta, entry_rows
from roomd.domain.errors import DomainError
from roomd.domain.overview import (
    Audience,
    RoomFilter,
    RoomSummary,
    describe,
    name_matches,
    parse_cursor,
    public_member,
)
from roomd.domain.store import iso
from roomd.protocol import ErrorCode

LIST_COLUMNS = ["CODE", "HOST", "MEMBERS c/t/max", "LOCKED", "STATE", "AGE", "EXPIRES IN", "IDLE", "AUDIENCE c/a"]


@click.group(cls=Group)
def rooms() -> None:
    """List, inspect, close, lock, unlock, extend rooms and hand them over; their audiences and polls.

    \b
    Examples:
      roomctl rooms list
      roomctl rooms list --idle-for 30m
      roomctl rooms show kxqd
      roomctl rooms audience KXQD --name bob
      roomctl rooms kick KXQD 5YgZuOCV-eoaUVvPVpVBIA --yes
      roomctl rooms poll KXQD
      roomctl rooms close KXQD --yes
      roomctl rooms close --idle-for 2h --yes
    """


def _check_cursor(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_cursor(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def idle_for(span: Span, now: int) -> RoomFilter:
    """Idle for ``span``: nobody connected, and no change to the room (a disconnect included) since."""
    return lambda s: s.connected == 0 and now - s.updated_at >= span.ms


def room_filter(
    locked: bool, empty: bool, idle: Span | None, host_name: str | None, now: int, with_audience: bool = False
) -> RoomFilter | None:
    """The ``rooms list`` filters, all of which must hold; None when none is given."""
    tests: list[RoomFilter] = []
    if with_audience:
        tests.append(lambda s: s.audience is not None)
    if locked:
        tests.append(lambda s: bool(s.room.get("isLocked")))
    if empty:
        tests.append(lambda s: s.connected == 0)
    if idle is not None:
        tests.append(idle_for(idle, now))
    if host_name is not None:
        matches = name_matches(host_name)
        tests.append(lambda s: s.host is not None and matches(str(s.host.get("displayName", ""))))
    if not tests:
        return None
    return lambda s: all(test(s) for test in tests)


@rooms.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Rooms per page.")
@click.option("--cursor", default=None, callback=_check_cursor, help="Continue after a previous page (its nextCursor).")
@click.option("--locked", is_flag=True, help="Only locked rooms.")
@click.option("--empty", is_flag=True, help="Only rooms nobody is connected to.")
@click.option("--idle-for", "idle", type=DURATION, default=None, metavar="DURATION",
              help="Only rooms nobody is connected to and unchanged for DURATION (45s, 30m, 2h, 1d).")  # fmt: skip
@click.option("--host-name", default=None, metavar="NAME",
              help="Only rooms whose host's name contains NAME (case-insensitive).")  # fmt: skip
@click.option("--with-audience", is_flag=True, help="Only rooms created with an audience (viewers).")
@common_options
@pass_ctl
def rooms_list(
    ctl: Ctl,
    limit: int,
    cursor: str | None,
    locked: bool,
    empty: bool,
    idle: Span | None,
    host_name: str | None,
    with_audience: bool,
) -> None:
    """Live rooms, newest first, a page at a time (MEMBERS is connected/total/max).

    Filters combine (all must hold). IDLE is the time since the room last changed
    (a join, leave, connect, disconnect, lock or host change). AUDIENCE is the
    viewers connected/admitted, "-" for a room without an audience.

    \b
    Examples:
      roomctl rooms list
      roomctl rooms list --limit 100 --cursor 1795563549123.KXQD
      roomctl rooms list --locked --host-name ana
      roomctl rooms list --with-audience
      roomctl rooms list --idle-for 30m --json | jq -r '.rooms[].code'
    """
    where = room_filter(locked, empty, idle, host_name, now_ms(), with_audience)
    page = ctl.run(lambda b: b.overview.list_rooms(limit, cursor, where))
    if ctl.out.as_json:
        ctl.out.data({"rooms": [describe(r) for r in page.rooms], "nextCursor": page.next_cursor})
        return
    now = now_ms()
    ctl.out.table("Rooms (newest first)", LIST_COLUMNS, [_list_row(r, now) for r in page.rooms])
    if page.next_cursor is not None:
        again = click.get_current_context().command_path
        filters = [f for f, on in (("--locked", locked), ("--empty", empty), ("--with-audience", with_audience)) if on]
        filters += [f"--idle-for {idle.text}"] if idle else []
        filters += [f"--host-name {shlex.quote(host_name)}"] if host_name is not None else []
        ctl.out.note(" ".join(["more:", again, f"--limit {limit}", *filters, f"--cursor {page.next_cursor}"]))


def _list_row(summary: RoomSummary, now: int) -> tuple[str, ...]:
    room = summary.room
    return (
        room["code"],
        (summary.host or {}).get("displayName", "-"),
        f"{summary.connected}/{len(summary.members)}/{room['maxUsers']}",
        _yes(room["isLocked"]),
        room.get("state", "open"),
        duration(now - room["createdAt"]),
        duration(room["expiresAt"] - now) if "expiresAt" in room else "-",
        duration(now - summary.updated_at),
        f"{summary.audience.connected}/{summary.audience.admitted}" if summary.audience else "-",
    )


@rooms.command("show")
@click.argument("code", type=ROOM_CODE)
@common_options
@pass_ctl
def rooms_show(ctl: Ctl, code: str) -> None:
    """A room's details, its audience and poll, its members (oldest first) and its state entries (by key).

    Every state entry is listed, whatever its visibleTo, without its value
    (SIZE is the value's encoded size in bytes; values: roomctl rooms state).
    The audience line counts viewers connected now and admitted; the poll line
    is the current (or last) poll's counts (viewers: roomctl rooms audience,
    the poll: roomctl rooms poll).

    \b
    Examples:
      roomctl rooms show kxqd
      roomctl rooms show KXQD --json | jq '.members[] | select(.isConnected)'
      roomctl rooms show KXQD --json | jq '.state[] | select(.visibleTo != "all") | .key'
      roomctl rooms show KXQD --json | jq '.poll.counts'
    """

    async def show(b: Backend) -> tuple[RoomSummary, Entries, dict[str, Any] | None]:
        summary = await b.overview.room(code)
        if summary is None:
            raise Failure(f"room {code} not found")
        return summary, await b.store.get_state(code), await b.store.get_poll(code)

    summary, entries, poll = ctl.run(show)
    room = describe(summary)
    members = [_member(m, summary.room["hostId"]) for m in summary.members]
    if ctl.out.as_json:
        ctl.out.data({"room": room, "members": members, "state": entry_meta(entries), "poll": poll})
        return
    ctl.out.fields(
        [
            ("code", room["code"]),
            ("host", f"{room['hostName'] or '-'} ({room['hostId']})"),
            ("members", f"{room['connectedCount']} connected / {room['memberCount']} / max {room['maxUsers']}"),
            ("locked", _yes(room["isLocked"])),
            ("state", room["state"]),
            ("created", room["createdAt"]),
            ("updated", room["updatedAt"]),
            ("expires", room["expiresAt"]),
            ("audience", audience_line(summary.audience)),
            *([("poll", poll_line(poll))] if poll is not None else []),
        ]
    )
    rows = [(m["id"], m["displayName"], _yes(m["isConnected"]), "★" if m["isHost"] else "") for m in members]
    ctl.out.table("Members (oldest first)", ["ID", "DISPLAY NAME", "CONNECTED", "HOST"], rows)
    if entries:  # a room without state shows no state table (piped: no header line either)
        size = sum(e["size"] for e in entries.values())
        ctl.out.table(f"State entries (by key; {len(entries)}, {size} bytes)", ENTRY_COLUMNS, entry_rows(entries))


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def audience_line(audience: Audience | None) -> str:
    """``rooms show``'s audience line: off, or connected / admitted and whether it is locked."""
    if audience is None:
        return "off"
    locked = "locked (no new viewers)" if audience.locked else "open"
    return f"{audience.connected} connected / {audience.admitted} admitted, {locked}"


def poll_line(poll: dict[str, Any]) -> str:
    """``rooms show``'s poll line: ``ID open|closed: CHOICE n, CHOICE n (N votes)``."""
    counts = ", ".join(f"{choice} {n}" for choice, n in poll["counts"].items())
    state = "open" if poll["open"] else "closed"
    return f"{poll['pollId']} {state}: {counts} ({poll['votes']} vote{'' if poll['votes'] == 1 else 's'})"


def _member(member: dict[str, Any], host_id: str) -> dict[str, Any]:
    view = public_member(member, host_id)
    return {**view, "joinedAt": iso(view["joinedAt"])}


@rooms.command("close")
@click.argument("code", type=ROOM_CODE, required=False)
@click.option("--idle-for", "idle", type=DURATION, default=None, metavar="DURATION",
              help="Instead of CODE: every room nobody is connected to and unchanged for DURATION.")  # fmt: skip
@yes_option
@common_options
@pass_ctl
def rooms_close(ctl: Ctl, code: str | None, idle: Span | None, yes: bool) -> None:
    """Close a room, or every idle room: members get room:closed {reason: ADMIN_CLOSED}, close code 4410.

    Every key of a closed room is deleted, so every token of the room dies with it.
    With --idle-for, each room is checked and closed in one atomic script: a room
    someone connects to meanwhile is left alone (reported as skipped). Asks for
    confirmation unless --yes.

    \b
    Examples:
      roomctl rooms close KXQD
      roomctl rooms close kxqd --yes --json
      roomctl rooms close --idle-for 2h --yes
    """
    if (code is None) == (idle is None):
        raise click.UsageError("give a room CODE or --idle-for DURATION (not both)")
    if idle is not None:
        _close_idle(ctl, idle, yes)
        return
    assert code is not None
    if not yes:
        ctl.confirm(f"Close room {code} and disconnect everyone in it?")
    ctl.run(lambda b: b.store.close_room(code, None), room=code)
    if ctl.out.as_json:
        ctl.out.data({"closed": code})
    else:
        ctl.out.success(f"room {code} closed")


def _close_idle(ctl: Ctl, idle: Span, yes: bool) -> None:
    since = now_ms() - idle.ms
    candidates = ctl.run(lambda b: b.overview.all_rooms(idle_for(idle, now_ms())))
    codes = [s.room["code"] for s in candidates]
    if codes and not yes:
        shown = ", ".join(codes[:20]) + (f" and {len(codes) - 20} more" if len(codes) > 20 else "")
        ctl.confirm(f"Close {len(codes)} room(s) idle for {idle.text} ({shown})?")

    async def close_all(b: Backend) -> tuple[list[str], list[str]]:
        closed: list[str] = []
        skipped: list[str] = []
        for code in codes:
            (closed if await b.store.close_if_idle(code, since) else skipped).append(code)
        return closed, skipped

    closed, skipped = ctl.run(close_all) if codes else ([], [])
    if ctl.out.as_json:
        ctl.out.data({"closed": closed, "skipped": skipped})
        return
    message = f"{len(closed)} room(s) idle for {idle.text} closed"
    if closed:
        message += ": " + " ".join(closed)
    ctl.out.success(message)
    if skipped:
        ctl.out.note(f"skipped (active again, or gone): {' '.join(skipped)}")


def _set_lock(ctl: Ctl, code: str, wanted: str) -> None:
    locked = ctl.run(lambda b: b.store.set_lock(code, None, wanted), room=code)
    if ctl.out.as_json:
        ctl.out.data({"code": code, "isLocked": locked})
    else:
        ctl.out.success(f"room {code} is {'locked' if locked else 'unlocked'}")


@rooms.command("lock")
@click.argument("code", type=ROOM_CODE)
@common_options
@pass_ctl
def rooms_lock(ctl: Ctl, code: str) -> None:
    """Lock a room (joins are refused); members get room:lock_toggled {isLocked: true}.

    Same operation as the host's toggle; nothing is broadcast if it was locked already.

    \b
    Examples:
      roomctl rooms lock KXQD
      roomctl rooms lock kxqd --json
    """
    _set_lock(ctl, code, "lock")


@rooms.command("unlock")
@click.argument("code", type=ROOM_CODE)
@common_options
@pass_ctl
def rooms_unlock(ctl: Ctl, code: str) -> None:
    """Unlock a room; members get room:lock_toggled {isLocked: false}.

    \b
    Examples:
      roomctl rooms unlock KXQD
      roomctl rooms unlock kxqd --json
    """
    _set_lock(ctl, code, "unlock")


@rooms.command("transfer-host")
@click.argument("code", type=ROOM_CODE)
@click.argument("user_id", type=USER)
@common_options
@pass_ctl
def rooms_transfer_host(ctl: Ctl, code: str, user_id: str) -> None:
    """Make a member the host, exactly as the host's own hand-over: members get room:host_updated.

    Nothing changes (exit 0) if the user is the host already.

    \b
    Examples:
      roomctl rooms transfer-host KXQD 5YgZuOCV-eoaUVvPVpVBIA
      roomctl rooms transfer-host kxqd --json -- -Qx3fZ0aYb1c2d3e4f5g6h
    """

    async def transfer(b: Backend) -> bool:
        try:
            await b.store.transfer_host(code, None, user_id)
        except DomainError as exc:
            if exc.code is ErrorCode.ALREADY_HOST:
                return False
            raise
        return True

    changed = ctl.run(transfer, room=code, user=user_id)
    if ctl.out.as_json:
        ctl.out.data({"code": code, "hostId": user_id, "changed": changed})
    elif changed:
        ctl.out.success(f"user {user_id} is now the host of room {code}")
    else:
        ctl.out.success(f"user {user_id} already hosts room {code}; nothing changed")


@rooms.command("extend")
@click.argument("code", type=ROOM_CODE)
@common_options
@pass_ctl
def rooms_extend(ctl: Ctl, code: str) -> None:
    """Re-arm a room's expiry: a full TTL from now (the room's own, else ROOM_TTL_SECONDS).

    No event is sent and the room's last change (IDLE) stays as it was.

    \b
    Examples:
      roomctl rooms extend KXQD
      roomctl rooms extend kxqd --json | jq -r .expiresAt
    """
    expires = ctl.run(lambda b: b.store.extend(code), room=code)
    if ctl.out.as_json:
        ctl.out.data({"code": code, "expiresAt": iso(expires)})
    else:
        ctl.out.success(f"room {code} now expires at {iso(expires)} (in {duration(expires - now_ms())})")
