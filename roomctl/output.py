"""Three ways out: rich tables on a terminal, plain tab-separated text when piped, JSON with --json."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        self.errors = Console(stderr=True, highlight=False)

    @property
    def terminal(self) -> bool:
        return self.console.is_terminal

    def data(self, payload: Any) -> None:
        """The --json document (one object, stable keys)."""
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.terminal:
            table = Table(title=title, title_justify="left", header_style="bold")
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*(Text(str(cell)) for cell in row))  # names are data, never markup
            self.console.print(table)
            return
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(str(cell) for cell in row) + "\n")

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        width = max(len(k) for k, _ in pairs)
        for key, value in pairs:
            if self.terminal:
                self.console.print(Text.assemble((key.ljust(width), "bold"), "  ", str(value)))
            else:
                sys.stdout.write(f"{key}\t{value}\n")

    def success(self, message: str) -> None:
        if self.terminal:
            self.console.print(f"[green]✓[/green] {message}")
        else:
            sys.stdout.write(message + "\n")

    def error(self, message: str) -> None:
        if self.errors.is_terminal:
            self.errors.print(f"[red]error:[/red] {message}")
        else:
            sys.stderr.write(f"error: {message}\n")


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
