"""``roomctl events``: a room's live event stream (or every room's), exactly the frames members receive.

Each bus message is ``<meta JSON>\\n<frame JSON>``; the frame is printed, the
meta (routing for roomd instances: seq, skip, direct, close, incarnation, and
whatever roomd adds later) is not, and is parsed tolerantly: a meta that is not
a JSON object is ignored, and a message without a readable frame is skipped with
a note on stderr instead of ending the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
from typing import Any

import click

from roomctl.connection import Backend
from roomctl.context import ROOM_CODE, Command, Ctl, Failure, common_options, pass_ctl
from roomctl.output import OutputError, now_ms, watch_reader
from roomd.domain.keys import channel, room_of_channel

READER_CHECK_SECONDS = 0.5  # how soon a closed pipe is noticed in a quiet room


def parse_bus_message(data: bytes | str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(meta, frame)`` of a bus message, or None if it carries no frame {event, data}.

    Only the frame matters to roomctl; unknown meta fields are ignored.
    """
    raw = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    meta_text, newline, frame_text = raw.partition("\n")
    if not newline:
        return None
    try:
        frame = json.loads(frame_text)
    except ValueError:
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        return None
    try:
        meta = json.loads(meta_text)
    except ValueError:
        meta = {}
    return (meta if isinstance(meta, dict) else {}), frame


def _broken_pipe() -> OutputError:
    return OutputError(BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)))


@click.command(cls=Command)
@click.argument("code", type=ROOM_CODE, required=False)
@click.option("--all", "every_room", is_flag=True,
              help="Every room's events instead of one room's (the room code leads each line).")  # fmt: skip
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many events (for scripts).")
@common_options
@pass_ctl
def events(ctl: Ctl, code: str | None, every_room: bool, count: int | None) -> None:
    """Follow a room's live events until Ctrl-C, the room closing, or --count events.

    Exits 0 after printing room:closed, and 0 on Ctrl-C. With --all, follows every
    room (PSUBSCRIBE) and keeps going when rooms close.

    \b
    Examples:
      roomctl events KXQD
      roomctl events kxqd --json | jq -c '{event, data}'
      roomctl events KXQD --count 1 --json
      roomctl events --all --json | jq -c 'select(.event == "user:kicked")'
    """
    if (code is None) == (not every_room):
        raise click.UsageError("give a room CODE or --all (not both)")

    async def follow(b: Backend) -> None:
        pubsub = b.client.pubsub()
        gone = asyncio.Event()
        stop_watching = watch_reader(gone.set)
        try:
            if code is None:
                await pubsub.psubscribe(channel("*"))
                ctl.out.note("following every room (Ctrl-C to stop)")
            else:
                await pubsub.subscribe(channel(code))  # before the check: no event can slip in between
                if await b.overview.room(code) is None:
                    raise Failure(f"room {code} not found")
                ctl.out.note(f"following room {code} (Ctrl-C to stop)")
            seen = 0
            while count is None or seen < count:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=READER_CHECK_SECONDS)
                if gone.is_set():
                    raise _broken_pipe()
                if message is None or message["type"] not in ("message", "pmessage"):
                    continue
                parsed = parse_bus_message(message["data"])
                if parsed is None:
                    ctl.out.note("skipped a bus message without a readable frame")
                    continue
                _, frame = parsed
                seen += 1
                if code is None:
                    name = message["channel"]
                    room = room_of_channel(name.decode() if isinstance(name, bytes) else name)
                    ctl.out.event(frame, now_ms(), room or "?")
                    continue
                ctl.out.event(frame, now_ms())
                if frame.get("event") == "room:closed":
                    break
        finally:
            stop_watching()
            await pubsub.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        ctl.run(follow, room=code or "")
