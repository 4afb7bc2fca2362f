"""Helpers for game-channel tests: rooms spread over processes, markers, a client-side mirror.

A frame that must NOT arrive is proven absent with a marker: the host sends a
``game:send {to: "all", type: "marker"}`` after the action, and each socket's
frames up to that marker are inspected (events of a room reach every member in
order, so anything caused earlier would have come before the marker).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.clients import Api, Socket
from tests.support.processes import RoomdProcess

_ids = itertools.count(1)


@dataclass
class Member:
    """One member: its membership, its socket, and what it has applied (like a client would)."""

    membership: dict[str, Any]
    sock: Socket
    frames: list[dict[str, Any]] = field(default_factory=list)  # every frame received, in order
    unread: list[dict[str, Any]] = field(default_factory=list)  # received, not yet taken by a helper
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[tuple[str, str, Any]] = field(default_factory=list)
    seq: int = 0  # highest seq applied (what a client reconnects with)

    @property
    def id(self) -> str:
        return self.membership["userId"]

    @property
    def token(self) -> str:
        return self.membership["token"]

    def apply(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        event, data = frame["event"], frame["data"]
        if event == "room:state":
            self.state = {k: dict(v) for k, v in data["state"].items()}
        elif event == "state:changed":
            self.state[data["key"]] = {"value": data["value"], "version": data["version"]}
        elif event == "state:deleted":
            self.state.pop(data["key"], None)
        elif event == "game:message":
            self.messages.append((data["from"], data["type"], data["data"]))
        if "seq" in frame:
            history = [(f["event"], f.get("seq")) for f in self.frames]
            assert frame["seq"] >= self.seq or event == "room:state", f"seq went back: {frame} after {history}"
            self.seq = max(self.seq, frame["seq"])
        # room:resumed is followed by the missed events (with their older seqs): it sets nothing.

    async def _pull(self, timeout: float) -> None:
        frame = await self.sock.next_event(timeout)
        self.apply(frame)
        self.unread.append(frame)

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        if not self.unread:
            await self._pull(timeout)
        return self.unread.pop(0)

    async def until(
        self, event: str, pred: Callable[[dict[str, Any]], bool] | None = None, *, timeout: float = 5.0, **match: Any
    ) -> list[dict[str, Any]]:
        """Frames up to one of ``event`` whose data contains ``match`` (and passes ``pred``), it last."""
        while True:
            for i, frame in enumerate(self.unread):
                data = frame["data"]
                if (
                    frame["event"] == event
                    and all(data.get(k) == v for k, v in match.items())
                    and (pred is None or pred(data))
                ):
                    chunk = self.unread[: i + 1]
                    del self.unread[: i + 1]
                    return chunk
            await self._pull(timeout)

    async def until_marker(self, name: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Frames up to (and including) the marker ``name``."""
        return await self.until("game:message", timeout=timeout, type="marker", data=name)

    async def send(self, event: str, data: dict[str, Any] | None = None) -> str:
        """Send a frame with a fresh id; returns the id."""
        msg_id = f"m{next(_ids)}"
        await self.sock.send(event, data, msg_id=msg_id)
        return msg_id

    async def reply(self, msg_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The ``ack`` or ``error:room`` of ``msg_id`` (other frames stay unread, in order)."""
        while True:
            for i, frame in enumerate(self.unread):
                if frame["event"] in ("ack", "error:room") and frame["data"].get("id") == msg_id:
                    return self.unread.pop(i)
            await self._pull(timeout)

    async def do(self, event: str, data: dict[str, Any] | None = None) -> int:
        """Send and expect an ack; returns its seq."""
        frame = await self.reply(await self.send(event, data))
        assert frame["event"] == "ack", frame
        return frame["data"]["seq"]

    async def fails(self, event: str, data: dict[str, Any] | None, code: str) -> dict[str, Any]:
        frame = await self.reply(await self.send(event, data))
        assert frame["event"] == "error:room" and frame["data"]["code"] == code, frame
        assert frame["data"]["event"] == event
        return frame["data"]

    def wire_text(self) -> str:
        """Everything received, as JSON text (to look for a value that must never arrive)."""
        return "\n".join(json.dumps(f) for f in self.frames)


async def connect(ws: str, membership: dict[str, Any], since: int | None = None) -> Member:
    """Connect and apply the first frame (``room:state`` or ``room:resumed``)."""
    url = ws if since is None else f"{ws}?since={since}"
    member = Member(membership, await Socket.connect(url, membership["token"]))
    first = await member.next()
    assert first["event"] in ("room:state", "room:resumed"), first
    return member


async def reconnect(ws: str, member: Member, since: int | None) -> Member:
    """A new socket for the same member, keeping what it had applied (like a reconnecting client)."""
    url = ws if since is None else f"{ws}?since={since}"
    fresh = Member(member.membership, await Socket.connect(url, member.token))
    fresh.state, fresh.messages, fresh.seq = member.state, member.messages, member.seq
    first = await fresh.next()
    assert first["event"] in ("room:state", "room:resumed"), first
    return fresh


async def room(api: Api, where: list[RoomdProcess], names: list[str], **options: Any) -> tuple[str, list[Member]]:
    """A room of ``names`` (the first is host), member i connected to ``where[i % len(where)]``.

    Returns once every member has seen every later member connect.
    """
    host = await api.create(names[0], **options)
    code = host["roomCode"]
    memberships = [host] + [await api.join(code, name) for name in names[1:]]
    members = []
    for i, membership in enumerate(memberships):
        members.append(await connect(where[i % len(where)].ws, membership))
    for i, member in enumerate(members):
        for later in members[i + 1 :]:
            await member.until("user:connected", lambda d, uid=later.id: d["user"]["id"] == uid)
    return code, members


async def mark(host: Member, members: list[Member], name: str) -> dict[str, list[dict[str, Any]]]:
    """Send the marker ``name`` from the host to all; each member's frames up to it, by user id."""
    await host.do("game:send", {"to": "all", "type": "marker", "data": name})
    return {m.id: await m.until_marker(name) for m in members}


def game_messages(frames: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [(f["data"]["from"], f["data"]["type"], f["data"]["data"]) for f in frames if f["event"] == "game:message"]
