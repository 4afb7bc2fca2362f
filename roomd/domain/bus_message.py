"""The bus message: the one codec of what a room's scripts publish and keep in its history.

Why here, in the domain layer: the domain's Lua scripts write these messages
(``publish_raw`` in ``lua/prelude.lua``, and ``lua/expire.lua``) and keep them in the
room's history (``keys.history_key``) for ``?since=`` replays, which ``store.py``
hands back raw. Fan-out (``roomd/fanout``), the transports, roomctl and the tests read
them through this module only: it is the format's single description and parser.

Format (UTF-8 bytes)::

    <meta JSON object>\\n<frame JSON object>

* **frame** - exactly the text members receive, encoded once in Lua:
  ``{"event": str, "data": {...}, "seq": int}``. ``seq`` is absent only on
  ``room:closed {"reason": "EXPIRED"}`` (the room is gone; it applies to every socket
  of that incarnation whatever it has seen). Game data and state values are spliced
  into ``data`` verbatim (never re-encoded), so the frame is treated as opaque bytes
  on the fan-out path.
* **meta** - routing for roomd instances; every field is optional:

  =========== ============================================================================
  ``seq``     int: the room's sequence number (the frame's ``seq``)
  ``inc``     str: the room's incarnation; a socket of an older room that had the same
              code drops messages of another incarnation
  ``to``      [userId]: the only members who may receive it (absent: every member)
  ``skip``    userId: that member does not receive it (their own action, answered by ack)
  ``direct``  ``{"userId", "event", "data"}``: that member receives this frame instead
  ``close``   ``{"code", "userId"?, "exceptSocket"?}``: after the frame, close the sockets
              of ``userId`` (absent: of every member) but ``exceptSocket``, with ``code``
  ``resync``  [userId]: members whose view changed wholesale (a new host): they re-read
              a snapshot
  ``aud``     0/1/2: who of the room's *audience* (viewers, not members) receives it.
              Absent or 0: members only (``to``/``skip`` apply to members), every event of
              a room without an audience and most events of one with it. 1 ("also"):
              members per ``to``/``skip``, and every viewer. 2 ("only"): viewers only;
              ``to``, if present, lists the *viewer* ids that receive it. A ``close``
              without ``userId`` in an aud 1 message (the room closed or expired) closes
              viewers too; ``close.userId`` equal to a viewer's id closes that viewer
  =========== ============================================================================

  Lua's cjson encodes an empty table as ``{}``: an empty ``to``/``resync`` may come as
  an object and means "nobody". Unknown fields are ignored (readers stay compatible
  with newer writers).

Writers: the Lua scripts only (roomd never publishes room events from Python). :func:`encode`
exists for the in-process broker and the tests, which must produce what the scripts do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

SEPARATOR = b"\n"


class BusMessageError(ValueError):
    """Bytes that are not a bus message (no separator, or a meta that is not a JSON object)."""


def _ids(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, dict):  # cjson's empty table
        return frozenset()
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    raise BusMessageError(f"expected a list of user ids, got {type(value).__name__}")


class BusMessage:
    """A decoded bus message: its routing fields and the frame bytes (``payload``).

    Decoded once per process per message (the hub), then read by every local socket's
    session. ``plain`` is true when only ``seq``/``inc``/``to``/``skip`` (and ``aud``) are set:
    the fast path of fan-out, where a member's session just writes the shared frame. ``aud``
    does not change what ``plain`` means for members: the hub never hands them an
    ``aud`` 2 message, and their replays skip it (:meth:`for_user`).
    """

    __slots__ = ("aud", "close", "direct", "inc", "payload", "plain", "resync", "seq", "skip", "to")

    def __init__(
        self,
        payload: bytes,
        *,
        seq: int | None = None,
        inc: str | None = None,
        to: frozenset[str] | None = None,
        skip: str | None = None,
        direct: dict[str, Any] | None = None,
        close: dict[str, Any] | None = None,
        resync: frozenset[str] | None = None,
        aud: int = 0,
    ) -> None:
        self.payload = payload
        self.seq = seq
        self.inc = inc
        self.to = to
        self.skip = skip
        self.direct = direct
        self.close = close
        self.resync = resync
        self.aud = aud
        self.plain = direct is None and close is None and resync is None

    @classmethod
    def decode(cls, raw: bytes) -> BusMessage:
        """Parse ``raw`` (as published or kept in history); :class:`BusMessageError` if malformed.

        The frame is not parsed (it is written to sockets as it is): see :meth:`frame`.
        """
        meta_raw, sep, payload = raw.partition(SEPARATOR)
        if not sep:
            raise BusMessageError("no meta/frame separator")
        try:
            meta = json.loads(meta_raw)
        except ValueError as exc:
            raise BusMessageError(f"meta is not JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise BusMessageError("meta is not a JSON object")
        seq = meta.get("seq")
        aud = meta.get("aud", 0)
        return cls(
            payload,
            seq=seq if isinstance(seq, int) else None,
            inc=meta.get("inc"),
            to=_ids(meta.get("to")),
            skip=meta.get("skip"),
            direct=meta.get("direct"),
            close=meta.get("close"),
            resync=_ids(meta.get("resync")),
            aud=aud if aud in (1, 2) else 0,
        )

    def for_user(self, user_id: str) -> bool:
        """Whether the *member* ``user_id`` may receive this message at all (``to``; never ``aud`` 2)."""
        return self.aud != 2 and (self.to is None or user_id in self.to)

    def for_viewer(self, audience_id: str) -> bool:
        """Whether the *viewer* ``audience_id`` may receive this message (``aud`` 1, or 2 and ``to``)."""
        aud = self.aud
        return aud == 1 or (aud == 2 and (self.to is None or audience_id in self.to))

    def frame(self) -> dict[str, Any]:
        """The frame as a dict (roomctl, tests); BusMessageError if it is not ``{"event": str, ...}``."""
        return _frame(self.payload)

    def meta(self) -> dict[str, Any]:
        """The meta fields that are set, as the scripts write them (lists for ``to``/``resync``)."""
        meta: dict[str, Any] = {}
        for name in ("seq", "inc", "skip", "direct", "close"):
            value = getattr(self, name)
            if value is not None:
                meta[name] = value
        if self.to is not None:
            meta["to"] = sorted(self.to)
        if self.resync is not None:
            meta["resync"] = sorted(self.resync)
        if self.aud:
            meta["aud"] = self.aud
        return meta

    def encode(self) -> bytes:
        """The bytes the scripts would publish for this message."""
        return json.dumps(self.meta(), separators=(",", ":")).encode() + SEPARATOR + self.payload

    def __repr__(self) -> str:
        return f"BusMessage({self.meta()!r}, {self.payload[:80]!r})"


def _frame(payload: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(payload)
    except ValueError as exc:
        raise BusMessageError(f"frame is not JSON: {exc}") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        raise BusMessageError('frame is not {"event": ..., "data": ...}')
    return frame


def frame_of(raw: bytes | str) -> dict[str, Any] | None:
    """The frame of a bus message whatever its meta (None if it has no readable frame).

    For readers that only show frames (``roomctl events``): a meta they cannot read does
    not hide the frame members received.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    _, sep, payload = data.partition(SEPARATOR)
    if not sep:
        return None
    try:
        return _frame(payload)
    except BusMessageError:
        return None


def encode(
    event: str,
    data: dict[str, Any],
    *,
    seq: int | None = None,
    inc: str | None = None,
    to: Iterable[str] | None = None,
    skip: str | None = None,
    direct: dict[str, Any] | None = None,
    close: dict[str, Any] | None = None,
    resync: Iterable[str] | None = None,
    aud: int = 0,
) -> bytes:
    """A bus message as the scripts write it (frame ``{"event", "data", "seq"?}``), for the
    in-process broker and the tests."""
    frame: dict[str, Any] = {"event": event, "data": data}
    if seq is not None:
        frame["seq"] = seq
    payload = json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()
    return BusMessage(
        payload,
        seq=seq,
        inc=inc,
        to=None if to is None else frozenset(to),
        skip=skip,
        direct=direct,
        close=close,
        resync=None if resync is None else frozenset(resync),
        aud=aud,
    ).encode()
