"""``roomctl rooms audience`` and ``rooms poll``: a room's viewers and its poll (issue 13).

Both only read (:class:`roomd.domain.overview.Overview`), so they work for a read-only
monitoring user. Viewers are not members: they hold a viewer token for one room, watch
it and vote in its polls; up to ``AUDIENCE_MAX`` (10,000) per room, so they are listed
a page at a time, oldest first.
"""

from __future__ import annotations

import shlex
from typing import Any

import click

from roomctl.connection import Backend
from roomctl.context import ROOM_CODE, Command, Ctl, Failure, common_options, pass_ctl
from roomd.domain.overview import Audience, ViewerPage, parse_viewer_cursor, public_viewer

VIEWER_COLUMNS = ["ID", "DISPLAY NAME", "JOINED"]
POLL_COLUMNS = ["CHOICE", "VOTES", "SHARE"]


def _check_cursor(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_viewer_cursor(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def audience_view(audience: Audience | None) -> dict[str, Any]:
    """The audience in JSON: enabled, locked, connected now, admitted."""
    if audience is None:
        return {"enabled": False, "locked": False, "connected": 0, "admitted": 0}
    return {"enabled": True, "locked": audience.locked, "connected": audience.connected, "admitted": audience.admitted}


@click.command("audience", cls=Command)
@click.argument("code", type=ROOM_CODE)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000), help="Viewers per page.")
@click.option("--cursor", default=None, callback=_check_cursor, help="Continue after a previous page (its nextCursor).")
@click.option("--name", default=None, metavar="NAME", help="Only viewers whose name contains NAME (case-insensitive).")
@common_options
@pass_ctl
def rooms_audience(ctl: Ctl, code: str, limit: int, cursor: str | None, name: str | None) -> None:
    """A room's admitted viewers (id, name, when admitted), oldest first, a page at a time.

    Admitted viewers hold a valid viewer token, connected or not; the title (and
    JSON's audience) also counts those connected now. A room created without an
    audience has none (exit 0, a note on stderr). Kick one with roomctl rooms kick.

    \b
    Examples:
      roomctl rooms audience KXQD
      roomctl rooms audience kxqd --name bob
      roomctl rooms audience KXQD --limit 10000 --json | jq -r '.viewers[].id'
    """

    async def read(b: Backend) -> tuple[Audience | None, ViewerPage]:
        summary = await b.overview.room(code)
        if summary is None:
            raise Failure(f"room {code} not found")
        if summary.audience is None:
            return None, ViewerPage([], None)
        return summary.audience, await b.overview.viewers(code, limit, cursor, name)

    audience, page = ctl.run(read)
    viewers = [public_viewer(v) for v in page.viewers]
    if ctl.out.as_json:
        ctl.out.data({"code": code, "audience": audience_view(audience), "viewers": viewers,
                      "nextCursor": page.next_cursor})  # fmt: skip
    else:
        title = f"Audience of room {code} (oldest first)"
        if audience is not None:
            locked = ", locked" if audience.locked else ""
            title = f"Audience of room {code} ({audience.connected} connected, {audience.admitted} admitted{locked})"
        rows = [(v["id"], v["displayName"], v["joinedAt"] or "-") for v in viewers]
        ctl.out.table(title, VIEWER_COLUMNS, rows)
    if audience is None:
        ctl.out.note(f"room {code} was created without an audience")
    elif page.next_cursor is not None:
        again = click.get_current_context().command_path
        named = [f"--name {shlex.quote(name)}"] if name is not None else []
        ctl.out.note(" ".join(["more:", again, code, f"--limit {limit}", *named, f"--cursor {page.next_cursor}"]))


@click.command("poll", cls=Command)
@click.argument("code", type=ROOM_CODE)
@common_options
@pass_ctl
def rooms_poll(ctl: Ctl, code: str) -> None:
    """A room's current (or last) poll: its choices and their exact counts now.

    The counts are read from Redis, not from the last tally published, so they
    are exact at the moment of reading. A room that has had no poll: exit 0, a
    note on stderr (JSON: "poll": null).

    \b
    Examples:
      roomctl rooms poll KXQD
      roomctl rooms poll kxqd --json | jq .poll.counts
    """

    async def read(b: Backend) -> dict[str, Any] | None:
        if await b.overview.room(code) is None:
            raise Failure(f"room {code} not found")
        return await b.store.get_poll(code)

    poll = ctl.run(read)
    if ctl.out.as_json:
        ctl.out.data({"code": code, "poll": poll})
        return
    if poll is None:
        ctl.out.note(f"room {code} has had no poll")
        return
    ctl.out.fields(
        [
            ("poll", poll["pollId"]),
            ("prompt", poll["prompt"] or "-"),
            ("state", "open" if poll["open"] else "closed"),
            ("tallies", "public (everyone sees them)" if poll["publicTallies"] else "host only"),
            ("votes", poll["votes"]),
        ]
    )
    total = sum(poll["counts"].values())
    rows = [(choice, n, f"{100 * n / total:.0f}%" if total else "-") for choice, n in poll["counts"].items()]
    ctl.out.table("Counts", POLL_COLUMNS, rows)  # in the poll's order


@click.command("audience-lock", cls=Command)
@click.argument("code", type=ROOM_CODE)
@click.option("--on/--off", "locked", default=None, help="Lock (no new viewers) or unlock the audience.")
@common_options
@pass_ctl
def rooms_audience_lock(ctl: Ctl, code: str, locked: bool | None) -> None:
    """Lock (--on) or unlock (--off) a room's audience: a locked audience admits no new viewer.

    The host's own operation (RoomStore.lock_audience with no acting user): the
    members receive audience:lock_updated {locked} when it changes (nothing is sent
    if it was so already). Viewers admitted already stay; a locked *room* still
    admits viewers unless its audience is locked too. Exit 1 for a room created
    without an audience.

    \b
    Examples:
      roomctl rooms audience-lock KXQD --on
      roomctl rooms audience-lock kxqd --off --json
    """
    if locked is None:
        raise click.UsageError("say --on (lock the audience) or --off (unlock it)")
    now_locked, _ = ctl.run(lambda b: b.store.lock_audience(code, None, locked), room=code)
    if ctl.out.as_json:
        ctl.out.data({"code": code, "audienceLocked": now_locked})
    else:
        state = "locked (no new viewers)" if now_locked else "unlocked"
        ctl.out.success(f"audience of room {code} is {state}")
