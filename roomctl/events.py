"""``roomctl events``: a room's live event stream, exactly the frames its members receive.

Each bus message is ``<meta JSON>\\n<frame JSON>``; the frame is printed, the
meta (routing for roomd instances) is not.
"""

from __future__ import annotations

import contextlib
import json

import click

from roomctl.connection import Backend
from roomctl.context import ROOM_CODE, Ctl, Failure, common_options, pass_ctl
from roomctl.output import now_ms
from roomd.domain.keys import channel


@click.command()
@click.argument("code", type=ROOM_CODE)
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many events (for scripts).")
@common_options
@pass_ctl
def events(ctl: Ctl, code: str, count: int | None) -> None:
    """Follow a room's live events until Ctrl-C, the room closing, or --count events.

    Exits 0 after printing room:closed, and 0 on Ctrl-C.

    \b
    Examples:
      roomctl events KXQD
      roomctl events kxqd --json | jq -c '{event, data}'
      roomctl events KXQD --count 1 --json
    """

    async def follow(b: Backend) -> None:
        pubsub = b.client.pubsub()
        try:
            await pubsub.subscribe(channel(code))  # before the check: no event can slip in between
            if await b.overview.room(code) is None:
                raise Failure(f"room {code} not found")
            ctl.out.note(f"following room {code} (Ctrl-C to stop)")
            seen = 0
            while count is None or seen < count:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is None or message["type"] != "message":
                    continue
                frame = json.loads(message["data"].partition(b"\n")[2])
                seen += 1
                ctl.out.event(frame, now_ms())
                if frame.get("event") == "room:closed":
                    break
        finally:
            await pubsub.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        ctl.run(follow, room=code)
