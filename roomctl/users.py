"""``roomctl users``: show, find and kick; a kick is the host's kick operation with actor None."""

from __future__ import annotations

from typing import Any

import click

from roomctl.connection import Backend
from roomctl.context import (
    NOT_FOUND,
    PERSON,
    ROOM_CODE,
    USER,
    Ctl,
    Failure,
    Group,
    common_options,
    pass_ctl,
    yes_option,
)
from roomd.domain.errors import DomainError
from roomd.domain.overview import public_member
from roomd.domain.store import RemovalResult, iso
from roomd.protocol import ErrorCode


@click.group(cls=Group)
def users() -> None:
    """Inspect, find and kick users.

    \b
    Examples:
      roomctl users show KXQD 5YgZuOCV-eoaUVvPVpVBIA
      roomctl users find ana
      roomctl users kick KXQD 5YgZuOCV-eoaUVvPVpVBIA --yes
    """


@users.command("kick")
@click.argument("code", type=ROOM_CODE)
@click.argument("user_id", metavar="ID", type=PERSON)
@yes_option
@common_options
@pass_ctl
def users_kick(ctl: Ctl, code: str, user_id: str, yes: bool) -> None:
    """Kick a member or a viewer exactly as a host would (also: roomctl rooms kick).

    A member receives user:kicked {by: ADMIN} and close code 4403, the others
    user:left {reason: KICKED}; a kicked host is replaced (room:host_updated); a
    room left empty is deleted. A viewer (an id of roomctl rooms audience) leaves
    the audience: it alone receives audience:kicked, its sockets close with 4403
    and its token dies. Asks for confirmation unless --yes.

    \b
    Examples:
      roomctl users kick KXQD 5YgZuOCV-eoaUVvPVpVBIA
      roomctl rooms kick kxqd 5YgZuOCV-eoaUVvPVpVBIA --yes --json
    """
    if not yes:
        role = ctl.run(lambda b: _role(b, code, user_id), room=code, user=user_id)
        ctl.confirm(f"Kick {'viewer' if role == 'viewer' else 'user'} {user_id} from room {code}?")
    role, result = ctl.run(lambda b: _kick(b, code, user_id), room=code, user=user_id)
    if ctl.out.as_json:
        ctl.out.data(
            {"kicked": user_id, "roomCode": code, "role": role, "newHostId": result.new_host_id or None,
             "roomDeleted": result.room_deleted}
        )  # fmt: skip
        return
    if role == "viewer":
        ctl.out.success(f"viewer {user_id} kicked from room {code}")
        return
    message = f"user {user_id} kicked from room {code}"
    if result.new_host_id:
        message += f"; new host {result.new_host_id}"
    if result.room_deleted:
        message += "; nobody was left, the room is gone"
    ctl.out.success(message)


async def _role(b: Backend, code: str, user_id: str) -> str:
    """``member`` or ``viewer`` (a member first: ids never clash, but a member is who a host kicks);
    exit 1 when neither, or the room is gone."""
    summary = await b.overview.room(code)
    if summary is None:
        raise Failure(f"room {code} not found")
    if any(m["id"] == user_id for m in summary.members):
        return "member"
    if summary.audience is not None:
        if await b.overview.viewer(code, user_id) is not None:
            return "viewer"
        raise Failure(f"user {user_id} is neither a member nor a viewer of room {code}")
    raise Failure(f"user {user_id} is not a member of room {code}")


async def _kick(b: Backend, code: str, user_id: str) -> tuple[str, RemovalResult]:
    """The kick script (one for members and viewers) after reading which one ``user_id`` is, for the
    report; the script decides atomically, so a member who left meanwhile is simply not found."""
    role = await _role(b, code, user_id)
    try:
        return role, await b.store.kick(code, None, user_id)
    except DomainError as exc:
        if exc.code is ErrorCode.MEMBER_NOT_FOUND:  # gone between the read and the kick
            await _role(b, code, user_id)  # says who is missing (or that the room is)
        raise


@users.command("show")
@click.argument("code", type=ROOM_CODE)
@click.argument("user_id", type=USER)
@common_options
@pass_ctl
def users_show(ctl: Ctl, code: str, user_id: str) -> None:
    """A member of room CODE: name, presence, whether they host.

    Members are stored within their room (as tokens name them), so the room code
    comes first; `roomctl users find NAME` finds a member's room by name.

    \b
    Examples:
      roomctl users show KXQD 5YgZuOCV-eoaUVvPVpVBIA
      roomctl users show kxqd 5YgZuOCV-eoaUVvPVpVBIA --json | jq -r .user.isConnected
    """

    async def show(b: Backend) -> dict[str, Any]:
        summary = await b.overview.room(code)
        if summary is None:
            raise Failure(f"room {code} not found")
        user = next((m for m in summary.members if m["id"] == user_id), None)
        if user is None:
            raise Failure(f"user {user_id} is not a member of room {code}")
        view = public_member(user, summary.room["hostId"])
        return {**view, "roomCode": code, "joinedAt": iso(view["joinedAt"])}

    view = ctl.run(show)
    if ctl.out.as_json:
        ctl.out.data({"user": view})
        return
    ctl.out.fields(
        [
            ("id", view["id"]),
            ("display name", view["displayName"]),
            ("room", view["roomCode"]),
            ("connected", "yes" if view["isConnected"] else "no"),
            ("host", "yes" if view["isHost"] else "no"),
            ("joined", view["joinedAt"]),
        ]
    )


@users.command("find")
@click.argument("name")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000), help="Users shown at most.")
@common_options
@pass_ctl
def users_find(ctl: Ctl, name: str, limit: int) -> None:
    """Users whose display name contains NAME (case-insensitive), newest rooms first.

    Walks every live room (like stats: seconds with 100,000 rooms). Exit 1 when
    nobody matches.

    \b
    Examples:
      roomctl users find ana
      roomctl users find 'Bob the' --json | jq -r '.users[] | "\\(.roomCode) \\(.id)"'
    """
    if not name.strip():
        raise click.BadParameter("give a part of a display name", param_hint="NAME")
    found, more = ctl.run(lambda b: b.overview.find_users(name, limit))
    if not found:
        ctl.fail(f"no user's name contains {name!r}", NOT_FOUND)
    views = [
        {**public_member(m, s.room["hostId"]), "roomCode": s.room["code"], "joinedAt": iso(m.get("joinedAt"))}
        for m, s in found
    ]
    if ctl.out.as_json:
        ctl.out.data({"users": views, "truncated": more})
        return
    rows = [
        (v["id"], v["displayName"], v["roomCode"], _yes(v["isConnected"]), "★" if v["isHost"] else "") for v in views
    ]
    ctl.out.table("Users", ["ID", "DISPLAY NAME", "ROOM", "CONNECTED", "HOST"], rows)
    if more:
        ctl.out.note(f"more users match: raise --limit (now {limit})")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
