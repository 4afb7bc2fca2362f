"""``roomctl migrate``: convert rooms stored in roomd's previous key layout (roomd/domain/layout.py).

roomd refuses to start on a Redis that holds rooms as ``room:KXQD`` / ``user:<id>`` (the
layout before the per-room ``{CODE}`` hash tags); this command converts them, with every
roomd stopped, and is safe to run again.
"""

from __future__ import annotations

from typing import Any

import click
from redis.asyncio.cluster import RedisCluster

from roomctl.connection import Backend
from roomctl.context import NOT_FOUND, USAGE, Command, Ctl, Failure, common_options, pass_ctl, yes_option
from roomd.domain.layout import MigrationReport, live_old_instances, migrate


@click.command("migrate", cls=Command)
@click.option("--dry-run", is_flag=True, help="Only say what would be converted; change nothing.")
@yes_option
@common_options
@pass_ctl
def migrate_command(ctl: Ctl, dry_run: bool, yes: bool) -> None:
    """Convert rooms of roomd's previous key layout (room:KXQD, user:<id>) to the current one.

    Stop every roomd first: roomctl refuses while an instance's heartbeat is fresh.
    Each room keeps its remaining TTL, members, history and state, in one transaction
    per room; its members are recorded disconnected (nobody is connected while roomd
    is stopped). Leftovers of rooms that had expired are deleted. Safe to run again;
    asks for confirmation unless --yes or --dry-run. Exit 1 if roomd is running.

    \b
    Examples:
      roomctl migrate --dry-run
      roomctl migrate --yes --json
    """
    if not dry_run and not yes:
        ctl.confirm("Convert every room of the previous key layout now (every roomd must be stopped)?")

    async def go(b: Backend) -> MigrationReport:
        if isinstance(b.client, RedisCluster):
            raise Failure("the previous key layout never ran on a Redis Cluster: nothing to migrate", USAGE)
        running = await live_old_instances(b.client, b.store.instance_timeout_ms)
        if running and not dry_run:
            raise Failure(f"roomd is running ({', '.join(running[:3])}): stop every roomd first", NOT_FOUND)
        return await migrate(b.client, b.store.keys, dry_run=dry_run)

    report = ctl.run(go)
    view: dict[str, Any] = {
        "dryRun": dry_run,
        "migrated": report.migrated,
        "members": report.members,
        "dropped": report.dropped,
        "conflicts": report.conflicts,
    }
    if ctl.out.as_json:
        ctl.out.data(view)
        return
    verb = "would convert" if dry_run else "converted"
    message = f"{verb} {len(report.migrated)} room(s) with {report.members} member(s)"
    if report.dropped:
        message += f"; {'would delete' if dry_run else 'deleted'} leftovers of {len(report.dropped)} gone room(s)"
    if report.conflicts:
        message += f"; {len(report.conflicts)} code(s) already taken in the new layout, old copy dropped"
    ctl.out.success(message)
