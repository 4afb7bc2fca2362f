"""Client events: the dispatch table (event name -> schema -> handler).

A new client event is one entry here plus its schema in ``protocol/``; the
WebSocket transport does not change.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from roomd import protocol
from roomd.domain.errors import DomainError
from roomd.domain.store import RoomStore
from roomd.protocol import ErrorCode
from roomd.transport.fastcheck import CHECKS, Check
from roomd.transport.nudges import Nudges


@dataclass(frozen=True)
class Caller:
    room_code: str
    user_id: str  # a viewer's audience id when role is "viewer"
    role: str = "member"  # "member" | "viewer" (the token's role claim)


VIEWER_EVENTS = frozenset({"poll:vote"})
"""The only client events a viewer of a room's audience may send; any other known event is
``NOT_ALLOWED`` for it before its handler runs (the transport checks, by the caller's role)."""


Handler = Callable[[RoomStore, Caller, dict[str, Any]], Awaitable[int]]  # returns the room's seq after the effect


CACHED_FRAME_BYTES = 256  # verdicts are remembered for frames up to this size...
CACHED_FRAMES = 4096  # ...and this many distinct texts per event (then no more are added)


@dataclass(frozen=True)
class Command:
    validator: Draft202012Validator
    handler: Handler
    verdicts: dict[str, str | None] = field(default_factory=dict, compare=False)
    fast: Check | None = None  # a hand-written equivalent of the schema (fastcheck.py), for hot events

    def problem(self, text: str, frame: dict[str, Any]) -> str | None:
        """The schema's first error for a client frame (``text`` parsed to ``frame``), or None if valid.

        The fast check settles valid frames of hot events (game frames all differ, so the
        verdict cache never hits for them); anything it refuses goes to the schema, which
        words the error and has the last word.
        """
        fast = self.fast
        if fast is not None and fast(frame):
            return None
        verdicts = self.verdicts
        if text in verdicts:
            return verdicts[text]
        problem = protocol.first_error(self.validator, frame)
        self.remember(text, problem)
        return problem

    def remember(self, text: str, problem: str | None) -> None:
        """Keep the schema verdict of a frame's exact text.

        Games resend the same few small frames all the time ({"event":"room:toggle_lock"}),
        and validation is a pure function of the text: measured at ~11% of the CPU under fan-out.
        """
        if len(text) <= CACHED_FRAME_BYTES and len(self.verdicts) < CACHED_FRAMES:
            self.verdicts[text] = problem


@dataclass(frozen=True)
class GameRules:
    """Checks on game messages that the frame schema cannot express (configuration)."""

    max_bytes: int = 8192  # GAME_MESSAGE_MAX_BYTES
    schemas: Mapping[str, Draft202012Validator] | None = None  # GAME_SCHEMAS_DIR: type -> validator of data


def encode_json(value: Any, what: str) -> str:
    """Compact JSON of a client-supplied value, spliced verbatim into frames by the scripts."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        text.encode()  # a lone surrogate cannot be sent to anyone
    except (ValueError, UnicodeEncodeError):
        raise DomainError(ErrorCode.INVALID_MESSAGE, f"{what}: not representable as JSON text") from None
    return text


async def _leave(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return (await store.leave(caller.room_code, caller.user_id)).seq


async def _close(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return await store.close_room(caller.room_code, caller.user_id)


async def _toggle_lock(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return (await store.set_lock_seq(caller.room_code, caller.user_id, "toggle"))[1]


async def _kick(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return (await store.kick(caller.room_code, caller.user_id, data["kickUserId"])).seq


async def _transfer_host(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return await store.transfer_host(caller.room_code, caller.user_id, data["newHostId"])


async def _state_set(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return await store.set_state(
        caller.room_code,
        caller.user_id,
        data["key"],
        encode_json(data["value"], "value"),
        visible_to=data.get("visibleTo"),
        writable_by=data.get("writableBy"),
        if_version=data.get("ifVersion"),
    )


async def _state_delete(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return await store.delete_state(caller.room_code, caller.user_id, data["key"], if_version=data.get("ifVersion"))


def _game_send(rules: GameRules) -> Handler:
    async def handler(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
        kind = data["type"]
        payload = data.get("data")
        encoded = encode_json(payload, "data")
        size = len(encoded.encode())
        if size > rules.max_bytes:
            raise DomainError(
                ErrorCode.MESSAGE_TOO_LARGE, f"data is {size} bytes encoded; at most {rules.max_bytes} are allowed"
            )
        if rules.schemas is not None:
            schema = rules.schemas.get(kind)
            if schema is None:
                raise DomainError(ErrorCode.UNKNOWN_EVENT, f"No game schema for message type {kind!r}")
            problem = protocol.first_error(schema, payload)
            if problem is not None:
                raise DomainError(ErrorCode.INVALID_MESSAGE, f"data: {problem}")
        return await store.send_game_message(caller.room_code, caller.user_id, data.get("to", "host"), kind, encoded)

    return handler


async def _poll_open(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return await store.open_poll(
        caller.room_code,
        caller.user_id,
        data["pollId"],
        data["choices"],
        prompt=data.get("prompt", ""),
        public=data.get("publicTallies", False),
    )


async def _poll_close(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return await store.close_poll(caller.room_code, caller.user_id, data["pollId"])


def _poll_vote(nudges: Nudges) -> Handler:
    """A viewer's vote; a tally it could not publish yet becomes this instance's nudge for the room."""

    async def handler(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
        if caller.role != "viewer":  # the script refuses members too; this spares it the round trip
            raise DomainError(ErrorCode.NOT_ALLOWED, "Only the audience's viewers vote in polls")
        code = caller.room_code
        vote = await store.vote(code, caller.user_id, data["pollId"], data["choice"])
        if vote.tally_due is not None:
            nudges.at(("poll:tally", code), vote.tally_due, lambda: store.tally_poll(code))
        return vote.seq

    return handler


async def _audience_lock(store: RoomStore, caller: Caller, data: dict[str, Any]) -> int:
    return (await store.lock_audience(caller.room_code, caller.user_id, data["locked"]))[1]


HANDLERS: dict[str, Handler] = {
    "room:leave": _leave,
    "room:close": _close,
    "room:toggle_lock": _toggle_lock,
    "room:kick": _kick,
    "room:transfer_host": _transfer_host,
    "state:set": _state_set,
    "state:delete": _state_delete,
    "audience:lock": _audience_lock,
    "poll:open": _poll_open,
    "poll:close": _poll_close,
}


def build_table(game: GameRules | None = None, nudges: Nudges | None = None) -> dict[str, Command]:
    """Pair every handler with its compiled schema; fail at start if either is missing.

    ``nudges``: the instance's timers (``Services.nudges``) that poll:vote hands its due tallies to.
    """
    handlers = {
        **HANDLERS,
        "game:send": _game_send(game or GameRules()),
        "poll:vote": _poll_vote(nudges if nudges is not None else Nudges()),
    }
    validators = protocol.client_event_validators()
    missing = set(handlers) ^ set(validators)
    if missing:
        raise RuntimeError(f"client events without both a schema and a handler: {sorted(missing)}")
    return {name: Command(validators[name], handler, fast=CHECKS.get(name)) for name, handler in handlers.items()}
