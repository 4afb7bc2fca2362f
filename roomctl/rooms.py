"""``roomctl rooms``: list, show, close, lock, unlock: the host's own operations with actor None."""

from __future__ import annotations

from typing import Any

import click

from roomctl.connection import Backend
from roomctl.context import ROOM_CODE, Ctl, Failure, common_options, pass_ctl, yes_option
from roomctl.output import duration, now_ms
from roomd.domain.overview import RoomSummary, describe, parse_cursor, public_member
from roomd.domain.store import iso

LIST_COLUMNS = ["CODE", "HOST", "MEMBERS c/t/max", "LOCKED", "STATE", "AGE", "EXPIRES IN"]


@click.group()
def rooms() -> None:
    """List, inspect, close, lock and unlock rooms.

    \b
    Examples:
      roomctl rooms list
      roomctl rooms show kxqd
      roomctl rooms close KXQD --yes
    """


def _check_cursor(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_cursor(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@rooms.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Rooms per page.")
@click.option("--cursor", default=None, callback=_check_cursor, help="Continue after a previous page (its nextCursor).")
@common_options
@pass_ctl
def rooms_list(ctl: Ctl, limit: int, cursor: str | None) -> None:
    """Live rooms, newest first, a page at a time (MEMBERS is connected/total/max).

    \b
    Examples:
      roomctl rooms list
      roomctl rooms list --limit 100 --cursor 1795563549123.KXQD
      roomctl rooms list --json | jq -r '.rooms[].code'
    """
    page = ctl.run(lambda b: b.overview.list_rooms(limit, cursor))
    if ctl.out.as_json:
        ctl.out.data({"rooms": [describe(r) for r in page.rooms], "nextCursor": page.next_cursor})
        return
    now = now_ms()
    ctl.out.table("Rooms (newest first)", LIST_COLUMNS, [_list_row(r, now) for r in page.rooms])
    if page.next_cursor is not None:
        ctl.out.note(f"more: roomctl rooms list --limit {limit} --cursor {page.next_cursor}")


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
    )


@rooms.command("show")
@click.argument("code", type=ROOM_CODE)
@common_options
@pass_ctl
def rooms_show(ctl: Ctl, code: str) -> None:
    """A room's details and its members (oldest first).

    \b
    Examples:
      roomctl rooms show kxqd
      roomctl rooms show KXQD --json | jq '.members[] | select(.isConnected)'
    """

    async def show(b: Backend) -> RoomSummary:
        summary = await b.overview.room(code)
        if summary is None:
            raise Failure(f"room {code} not found")
        return summary

    summary = ctl.run(show)
    room = describe(summary)
    members = [_member(m, summary.room["hostId"]) for m in summary.members]
    if ctl.out.as_json:
        ctl.out.data({"room": room, "members": members})
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
        ]
    )
    rows = [(m["id"], m["displayName"], _yes(m["isConnected"]), "★" if m["isHost"] else "") for m in members]
    ctl.out.table("Members (oldest first)", ["ID", "DISPLAY NAME", "CONNECTED", "HOST"], rows)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _member(member: dict[str, Any], host_id: str) -> dict[str, Any]:
    view = public_member(member, host_id)
    return {**view, "joinedAt": iso(view["joinedAt"])}


@rooms.command("close")
@click.argument("code", type=ROOM_CODE)
@yes_option
@common_options
@pass_ctl
def rooms_close(ctl: Ctl, code: str, yes: bool) -> None:
    """Close a room: members get room:closed {reason: ADMIN_CLOSED} and close code 4410.

    Every key of the room is deleted, so every token of the room dies with it.
    Asks for confirmation unless --yes.

    \b
    Examples:
      roomctl rooms close KXQD
      roomctl rooms close kxqd --yes --json
    """
    if not yes:
        ctl.confirm(f"Close room {code} and disconnect everyone in it?")
    ctl.run(lambda b: b.store.close_room(code, None), room=code)
    if ctl.out.as_json:
        ctl.out.data({"closed": code})
    else:
        ctl.out.success(f"room {code} closed")


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
