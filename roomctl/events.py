"""``roomctl events``: a room's live event stream (or every room's), exactly the frames members receive.

Each bus message (format and codec: ``roomd/domain/bus_message.py``) is a frame and
its routing meta; the frame is printed, the meta is only read for the recipients of
game events, tolerantly: a meta that cannot be read is ignored, and a message without
a readable frame is skipped with a note on stderr instead of ending the stream.

On a Redis Cluster the scripts SPUBLISH: one room is followed with SSUBSCRIBE (on
the master serving its slot); ``--all`` is refused there, sharded pub/sub having no
pattern subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
from collections.abc import Collection
from typing import Any

import click
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster

from roomctl.connection import Backend
from roomctl.context import ROOM_CODE, Command, Ctl, Failure, common_options, pass_ctl
from roomctl.output import OutputError, now_ms, watch_reader
from roomd.domain.bus_message import BusMessage, BusMessageError, frame_of
from roomd.domain.keys import channel, layout, room_of_channel

READER_CHECK_SECONDS = 0.5  # how soon a closed pipe is noticed in a quiet room
PREVIEW_CHARS = 200  # of a game message's data or a state value, in text output (--json: whole)
GAME_EVENTS = ("game:message", "state:changed", "state:deleted")


# -- game events, readable: who sent what to whom, which entry changed and who sees it ----------


def audience(to: Collection[str] | None, skip: str | None, aud: int = 0) -> str:
    """Who a frame went to, from its bus routing: the members (``to`` / ``skip``) and, in a room
    with an audience, its viewers (``aud`` 1: also every viewer; 2: viewers only, ``to`` naming them)."""
    if aud == 2:
        return "the audience" if to is None else "viewers " + (", ".join(sorted(to)) if to else "none")
    if to is not None:
        members = ", ".join(sorted(to)) if to else "nobody"
    elif skip is not None:
        members = f"everyone but {skip}"
    else:
        members = "everyone"
    return f"{members} and the audience" if aud == 1 else members


def preview(value: Any) -> str:
    """A value as one line of JSON, cut to PREVIEW_CHARS (a state value may be 256 kB)."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def game_summary(frame: dict[str, Any], to: Collection[str] | None, skip: str | None, aud: int = 0) -> str | None:
    """The text line's body for a game event, instead of its data JSON; None for other events.

    ``game:message``: ``TYPE from USER → RECIPIENTS: DATA``; ``state:changed``:
    ``KEY = VALUE (vN by USER → READERS)``; ``state:deleted``: ``KEY (vN by USER → READERS)``
    (sent when an entry is deleted, and to members who can no longer read it).
    """
    event, data = frame.get("event"), frame.get("data")
    if event not in GAME_EVENTS or not isinstance(data, dict):
        return None
    who = audience(to, skip, aud)
    if event == "game:message":
        return f"{data.get('type')} from {data.get('from')} → {who}: {preview(data.get('data'))}"
    change = f"(v{data.get('version')} by {data.get('by')} → {who})"
    if event == "state:changed":
        return f"{data.get('key')} = {preview(data.get('value'))} {change}"
    return f"{data.get('key')} {change}"


def routing(frame: dict[str, Any], to: Collection[str] | None, skip: str | None, aud: int = 0) -> dict[str, Any]:
    """The JSON line's extra fields: for a game event ``to`` (sorted ids) and/or ``skip``, when set;
    for any event ``aud`` when its viewers receive it (1: also the audience, 2: the audience only,
    ``to`` then naming viewers)."""
    extra: dict[str, Any] = {}
    if frame.get("event") in GAME_EVENTS or aud == 2:
        if to is not None:
            extra["to"] = sorted(to)
        if skip is not None:
            extra["skip"] = skip
    if aud:
        extra["aud"] = aud
    return extra


def recipients(raw: bytes | str) -> tuple[frozenset[str] | None, str | None, int]:
    """``to``, ``skip`` and ``aud`` of a bus message, read by the codec; (None, None, 0) if its meta
    is unreadable."""
    try:
        message = BusMessage.decode(raw.encode() if isinstance(raw, str) else raw)
    except BusMessageError:
        return None, None, 0
    return message.to, message.skip, message.aud


def show(ctl: Ctl, frame: dict[str, Any], raw: bytes | str, room: str | None = None) -> None:
    """Print one frame; game events readably, with their recipients (the administrator sees every one,
    those only viewers receive included)."""
    to, skip, aud = recipients(raw)
    summary = game_summary(frame, to, skip, aud)
    ctl.out.event(frame, now_ms(), room, summary=summary, extra=routing(frame, to, skip, aud))


class _Feed:
    """Bus messages of one room or of every room: SUBSCRIBE/PSUBSCRIBE on one Redis (or
    Sentinel), SSUBSCRIBE on a Cluster (redis-py's cluster pub/sub finds the room's master)."""

    def __init__(self, client: aioredis.Redis | RedisCluster) -> None:
        self._client = client
        self._pubsub: PubSub | ClusterPubSub = client.pubsub()

    async def every_room(self) -> None:
        if isinstance(self._pubsub, ClusterPubSub):
            raise Failure(
                "--all needs one Redis: on a Redis Cluster rooms publish with SPUBLISH, which has no "
                "pattern subscriptions; follow one room at a time (roomctl events CODE)"
            )
        await self._pubsub.psubscribe(layout().every_room_channel())

    async def room(self, code: str) -> None:
        if isinstance(self._client, RedisCluster) and isinstance(self._pubsub, ClusterPubSub):
            await self._client.initialize()  # the slot map: ssubscribe does not read it itself
            await self._pubsub.ssubscribe(channel(code))
        else:
            await self._pubsub.subscribe(channel(code))

    async def next(self) -> dict[str, Any] | None:
        """The next message (None after READER_CHECK_SECONDS without one)."""
        if isinstance(self._pubsub, ClusterPubSub):
            message = await self._pubsub.get_sharded_message(
                ignore_subscribe_messages=True, timeout=READER_CHECK_SECONDS
            )
        else:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=READER_CHECK_SECONDS)
        if message is None or message["type"] not in ("message", "pmessage", "smessage"):
            return None
        return message

    async def aclose(self) -> None:
        await self._pubsub.aclose()


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
        feed = _Feed(b.client)
        gone = asyncio.Event()
        stop_watching = watch_reader(gone.set)
        try:
            if code is None:
                await feed.every_room()
                ctl.out.note("following every room (Ctrl-C to stop)")
            else:
                await feed.room(code)  # before the check: no event can slip in between
                if await b.overview.room(code) is None:
                    raise Failure(f"room {code} not found")
                ctl.out.note(f"following room {code} (Ctrl-C to stop)")
            seen = 0
            while count is None or seen < count:
                message = await feed.next()
                if gone.is_set():
                    raise _broken_pipe()
                if message is None:
                    continue
                frame = frame_of(message["data"])  # whatever its meta: the frame is what members got
                if frame is None:
                    ctl.out.note("skipped a bus message without a readable frame")
                    continue
                seen += 1
                if code is None:
                    name = message["channel"]
                    room = room_of_channel(name.decode() if isinstance(name, bytes) else name)
                    show(ctl, frame, message["data"], room or "?")
                    continue
                show(ctl, frame, message["data"])
                if frame.get("event") == "room:closed":
                    break
        finally:
            stop_watching()
            await feed.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        ctl.run(follow, room=code or "")
