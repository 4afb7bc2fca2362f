"""Three ways out: rich tables on a terminal, plain tab-separated text when piped, JSON with --json.

Data (tables, fields, JSON) goes to stdout; notes and errors go to stderr, so a
pipe (``roomctl --json rooms list | jq``) only ever sees the data. Every write
is flushed at once: ``roomctl events`` is read line by line by other programs.

A write that fails (the reader of a pipe went away, the disk is full) raises
:class:`OutputError`, never an ``OSError``: an ``OSError`` inside a command means
Redis (exit 3), and :func:`output_failed` ends the process the conventional way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TextIO

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from roomd.domain.store import iso

OUTPUT_FAILED = 4  # exit code: the output could not be written (disk full, I/O error)


class OutputError(Exception):
    """stdout or stderr could not be written; ``reader_gone`` when a pipe's reader closed it."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error

    @property
    def reader_gone(self) -> bool:
        return self.error.errno == errno.EPIPE


class _Console(Console):
    """rich's Console, reporting a broken pipe as OutputError (rich's default: SystemExit(1))."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise OutputError(BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)))


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Turn a failed write into OutputError."""
    try:
        yield
    except OSError as exc:
        raise OutputError(exc) from None


def write_line(stream: TextIO, line: str) -> None:
    """One line, flushed at once (``roomctl events`` is read live through pipes)."""
    with guarded():
        stream.write(line + "\n")
        stream.flush()


def _silence(fd: int) -> None:
    """Point ``fd`` at /dev/null, so the interpreter's last flush of unwritten data cannot fail again."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


def output_failed(error: OSError) -> NoReturn:
    """End the process after a failed write, the conventional way.

    A reader that went away (EPIPE: ``roomctl events X | head -1``) ends roomctl
    as it ends ``cat`` or ``yes``: silently, killed by SIGPIPE (a shell reports
    141). Python ignores SIGPIPE, so the default action is restored and the
    signal raised only now, for stdout and stderr; Redis sockets keep raising
    errors (exit 3). Any other failure (ENOSPC on ``> /dev/full``) is one line on
    stderr, if stderr can take it, and exit 4.
    """
    _silence(sys.stdout.fileno())
    if error.errno == errno.EPIPE:
        _silence(sys.stderr.fileno())
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
        sys.exit(128 + signal.SIGPIPE)  # not reached: the signal ends the process
    try:
        sys.stderr.write(f"error: cannot write the output: {error.strerror or error}\n")
        sys.stderr.flush()
    except OSError:
        _silence(sys.stderr.fileno())
    sys.exit(OUTPUT_FAILED)


def watch_reader(on_gone: Callable[[], None]) -> Callable[[], None]:
    """Call ``on_gone`` as soon as the reader of stdout closes its end, when stdout is a pipe.

    A follower in a quiet room (``roomctl events X | head -1``) would otherwise
    notice only at its next write, maybe never. The write end of a pipe becomes
    "in error" (EPOLLERR, which asyncio reports as readable) once it has no
    reader, and is never readable otherwise. Returns the function that stops
    watching; a no-op for terminals, files and sockets.
    """
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return lambda: None
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, on_gone)
    except (OSError, ValueError):
        return lambda: None

    def stop() -> None:
        loop.remove_reader(fd)

    return stop


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json  # may be switched on by a command's own --json
        self.console = _Console(highlight=False)
        self.errors = _Console(stderr=True, highlight=False)

    def _print(self, console: Console, renderable: RenderableType) -> None:
        with guarded():
            console.print(renderable)

    @property
    def terminal(self) -> bool:
        """rich's verdict: stdout is a TTY (or FORCE_COLOR / TTY_COMPATIBLE=1 says to act as one)."""
        return self.console.is_terminal

    def data(self, payload: Any) -> None:
        """One --json document (one object on one line, stable keys)."""
        write_line(sys.stdout, json.dumps(payload, ensure_ascii=False))

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.terminal:
            table = Table(title=title, title_justify="left", header_style="bold")
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*(Text(str(cell)) for cell in row))  # names are data, never markup
            self._print(self.console, table)
            return
        write_line(sys.stdout, "\n".join("\t".join(_cell(c) for c in line) for line in [columns, *rows]))

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        width = max(len(k) for k, _ in pairs)
        for key, value in pairs:
            if self.terminal:
                self._print(self.console, Text.assemble((key.ljust(width), "bold"), "  ", str(value)))
            else:
                write_line(sys.stdout, f"{key}\t{_cell(value)}")

    def blank(self) -> None:
        """An empty line on stdout (between the blocks of ``stats --watch`` when piped)."""
        write_line(sys.stdout, "")

    def success(self, message: str) -> None:
        if self.terminal:
            self._print(self.console, Text.assemble(("✓ ", "green"), message))
        else:
            write_line(sys.stdout, message)

    def note(self, message: str) -> None:
        """A remark for the person at the terminal (stderr): never mixed into the data."""
        if self.errors.is_terminal:
            self._print(self.errors, Text(message, style="dim"))
        else:
            write_line(sys.stderr, message)

    def error(self, message: str) -> None:
        """The line before a failure exit; if stderr cannot take it, the exit code still tells."""
        try:
            if self.errors.is_terminal:
                self._print(self.errors, Text.assemble(("error: ", "red"), message))
            else:
                write_line(sys.stderr, f"error: {message}")
        except OutputError:
            _silence(sys.stderr.fileno())

    def event(
        self,
        frame: dict[str, Any],
        received_ms: int,
        room: str | None = None,
        *,
        summary: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """One frame of ``roomctl events``: JSON line, tab-separated line, or a coloured line.

        ``room`` is given for ``events --all``: the code then leads each line (a ``room`` key in JSON).
        ``summary`` replaces the data JSON in text (game events, see ``roomctl.events``);
        ``extra`` fields follow ``data`` in JSON.
        """
        stamp = iso(received_ms) or ""
        if self.as_json:
            where = {} if room is None else {"room": room}
            self.data({"ts": stamp, **where, "event": frame.get("event"), "data": frame.get("data"), **(extra or {})})
            return
        data = json.dumps(frame.get("data", {}), ensure_ascii=False) if summary is None else summary
        event = str(frame.get("event"))
        if self.terminal:
            style = "bold red" if event in ("room:closed", "user:kicked") else "bold cyan"
            style = "bold magenta" if event.startswith(("game:", "state:")) else style
            where_text: list[Any] = [] if room is None else [(room, "bold"), " "]
            line = Text.assemble((stamp, "dim"), " ", *where_text, (event, style), " ", data)
            self._print(self.console, line)
        else:
            where_cell = "" if room is None else f"{room}\t"
            write_line(sys.stdout, f"{stamp}\t{where_cell}{event}\t{data}")


def _cell(value: Any) -> str:
    """A value on one tab-separated line: tabs and newlines inside names would break the columns."""
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


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
