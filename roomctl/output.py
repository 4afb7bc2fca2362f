"""Three ways out: rich tables on a terminal, plain tab-separated text when piped, JSON with --json.

Data (tables, fields, JSON) goes to stdout; notes and errors go to stderr, so a
pipe (``roomctl --json rooms list | jq``) only ever sees the data. Every write
is flushed at once: ``roomctl events`` is read line by line by other programs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from roomd.domain.store import iso


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json  # may be switched on by a command's own --json
        self.console = Console(highlight=False)
        self.errors = Console(stderr=True, highlight=False)

    @property
    def terminal(self) -> bool:
        """rich's verdict: stdout is a TTY (or FORCE_COLOR / TTY_COMPATIBLE=1 says to act as one)."""
        return self.console.is_terminal

    def data(self, payload: Any) -> None:
        """One --json document (one object on one line, stable keys)."""
        _write(sys.stdout, json.dumps(payload, ensure_ascii=False))

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.terminal:
            table = Table(title=title, title_justify="left", header_style="bold")
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*(Text(str(cell)) for cell in row))  # names are data, never markup
            self.console.print(table)
            return
        _write(sys.stdout, "\n".join("\t".join(_cell(c) for c in line) for line in [columns, *rows]))

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        width = max(len(k) for k, _ in pairs)
        for key, value in pairs:
            if self.terminal:
                self.console.print(Text.assemble((key.ljust(width), "bold"), "  ", str(value)))
            else:
                _write(sys.stdout, f"{key}\t{_cell(value)}")

    def success(self, message: str) -> None:
        if self.terminal:
            self.console.print(Text.assemble(("✓ ", "green"), message))
        else:
            _write(sys.stdout, message)

    def note(self, message: str) -> None:
        """A remark for the person at the terminal (stderr): never mixed into the data."""
        if self.errors.is_terminal:
            self.errors.print(Text(message, style="dim"))
        else:
            _write(sys.stderr, message)

    def error(self, message: str) -> None:
        if self.errors.is_terminal:
            self.errors.print(Text.assemble(("error: ", "red"), message))
        else:
            _write(sys.stderr, f"error: {message}")

    def event(self, frame: dict[str, Any], received_ms: int) -> None:
        """One frame of ``roomctl events``: JSON line, tab-separated line, or a coloured line."""
        stamp = iso(received_ms) or ""
        if self.as_json:
            self.data({"ts": stamp, "event": frame.get("event"), "data": frame.get("data")})
            return
        data = json.dumps(frame.get("data", {}), ensure_ascii=False)
        event = str(frame.get("event"))
        if self.terminal:
            style = "bold red" if event in ("room:closed", "user:kicked") else "bold cyan"
            self.console.print(Text.assemble((stamp, "dim"), " ", (event, style), " ", data))
        else:
            _write(sys.stdout, f"{stamp}\t{event}\t{data}")


def _cell(value: Any) -> str:
    """A value on one tab-separated line: tabs and newlines inside names would break the columns."""
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _write(stream: Any, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()


def duration(ms: int | float | None) -> str:
    """A compact human duration: 45s, 12m, 3h05m, 2d04h."""
    if ms is None:
        return "-"
    seconds = max(0, int(ms // 1000))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def now_ms() -> int:
    return int(time.time() * 1000)
