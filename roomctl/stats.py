"""``roomctl stats``: totals over the live rooms and the roomd instances seen by their heartbeats.

``--watch`` refreshes them until Ctrl-C: redrawn in place on a terminal, one
block (or one JSON line) per refresh when piped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from typing import Any

import click
from rich.console import Group as Renderables
from rich.live import Live
from rich.table import Table
from rich.text import Text

from roomctl.connection import Backend
from roomctl.context import Command, Ctl, common_options, pass_ctl
from roomctl.output import OutputError, duration, guarded, now_ms, watch_reader
from roomd.domain.overview import Stats
from roomd.domain.store import iso

DEFAULT_WATCH_SECONDS = 2.0


def as_json(result: Stats) -> dict[str, Any]:
    return {
        "rooms": result.rooms,
        "members": result.members,
        "connectedMembers": result.connected,
        "instances": [{"id": i, "lastSeen": iso(seen)} for i, seen in result.instances],
    }


def _fields(result: Stats) -> list[tuple[str, Any]]:
    return [
        ("rooms", result.rooms),
        ("members", result.members),
        ("connected", result.connected),
        ("instances", len(result.instances)),
    ]


def _instance_rows(result: Stats) -> list[tuple[str, str]]:
    now = now_ms()
    return [(i, f"{duration(now - seen)} ago") for i, seen in result.instances]


INSTANCE_COLUMNS = ["INSTANCE (host:pid:port:random)", "LAST HEARTBEAT"]


def show(ctl: Ctl, result: Stats) -> None:
    """One report: JSON, tab-separated fields and table, or rich on a terminal."""
    if ctl.out.as_json:
        ctl.out.data(as_json(result))
        return
    ctl.out.fields(_fields(result))
    if result.instances:
        ctl.out.table("roomd instances", INSTANCE_COLUMNS, _instance_rows(result))


def _screen(result: Stats, every: float) -> Renderables:
    """The terminal view of ``--watch``, redrawn in place."""
    width = max(len(k) for k, _ in _fields(result))
    lines: list[Any] = [Text(f"{iso(now_ms())}  every {every:g}s, Ctrl-C to stop", style="dim")]
    lines += [Text.assemble((k.ljust(width), "bold"), "  ", str(v)) for k, v in _fields(result)]
    if result.instances:
        table = Table(title="roomd instances", title_justify="left", header_style="bold")
        for column in INSTANCE_COLUMNS:
            table.add_column(column)
        for row in _instance_rows(result):
            table.add_row(*(Text(cell) for cell in row))
        lines.append(table)
    return Renderables(*lines)


@click.command(cls=Command)
@click.option("--watch", "every", type=click.FloatRange(min=0.1), default=None, is_flag=False,
              flag_value=DEFAULT_WATCH_SECONDS, metavar="[SECONDS]",
              help=f"Refresh every SECONDS (default {DEFAULT_WATCH_SECONDS:g}) until Ctrl-C.")  # fmt: skip
@common_options
@pass_ctl
def stats(ctl: Ctl, every: float | None) -> None:
    """Rooms, members, connected members, and roomd instances seen (heartbeat within 15 s).

    With --watch: redrawn in place on a terminal; piped, one block per refresh
    separated by an empty line (with --json, one JSON object per line, with "ts").
    Ctrl-C ends it with exit 0.

    \b
    Examples:
      roomctl stats
      roomctl stats --json | jq .connectedMembers
      roomctl stats --watch
      roomctl stats --watch 10 --json >> stats.jsonl
    """
    if every is None:
        show(ctl, ctl.run(lambda b: b.overview.stats()))
        return
    with contextlib.suppress(KeyboardInterrupt):
        ctl.run(lambda b: _watch(ctl, b, every))


async def _watch(ctl: Ctl, b: Backend, every: float) -> None:
    gone = asyncio.Event()
    stop_watching = watch_reader(gone.set)  # a closed pipe ends us even between refreshes
    live = Live(console=ctl.out.console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
    terminal = ctl.out.terminal and not ctl.out.as_json
    first = True
    try:
        if terminal:
            with guarded():
                live.start()
        while True:
            result = await b.overview.stats()
            if terminal:
                with guarded():
                    live.update(_screen(result, every), refresh=True)
            elif ctl.out.as_json:
                ctl.out.data({"ts": iso(now_ms()), **as_json(result)})
            else:
                if not first:
                    ctl.out.blank()
                show(ctl, result)
            first = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), every)
            if gone.is_set():
                raise OutputError(BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)))
    finally:
        stop_watching()
        if terminal:
            with contextlib.suppress(OutputError, OSError):
                live.stop()
