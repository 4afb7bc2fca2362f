"""``roomctl stats``: totals over the live rooms and the roomd instances seen by their heartbeats."""

from __future__ import annotations

import click

from roomctl.context import Ctl, common_options, pass_ctl
from roomctl.output import duration, now_ms
from roomd.domain.store import iso


@click.command()
@common_options
@pass_ctl
def stats(ctl: Ctl) -> None:
    """Rooms, members, connected members, and roomd instances seen (heartbeat within 15 s).

    \b
    Examples:
      roomctl stats
      roomctl stats --json | jq .connectedMembers
    """
    result = ctl.run(lambda b: b.overview.stats())
    if ctl.out.as_json:
        ctl.out.data(
            {
                "rooms": result.rooms,
                "members": result.members,
                "connectedMembers": result.connected,
                "instances": [{"id": i, "lastSeen": iso(seen)} for i, seen in result.instances],
            }
        )
        return
    ctl.out.fields(
        [
            ("rooms", result.rooms),
            ("members", result.members),
            ("connected", result.connected),
            ("instances", len(result.instances)),
        ]
    )
    if result.instances:
        now = now_ms()
        rows = [(i, f"{duration(now - seen)} ago") for i, seen in result.instances]
        ctl.out.table("roomd instances", ["INSTANCE (host:pid:port)", "LAST HEARTBEAT"], rows)
