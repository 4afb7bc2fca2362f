"""A socket's session: which room frames reach the client, in which order, and when.

One object owns the rules that used to be spread over ``RoomSocket`` flags:

* **buffering** - until the first snapshot (``room:state``) or replay
  (``room:resumed`` + missed events) is written, and again while a snapshot is
  re-read (a pub/sub reconnect, or a host change that changes what this member
  may read), bus events are queued, then filtered by ``seq``: nothing the
  snapshot already reflects is written twice, and no snapshot is ever written
  after a newer event;
* **filtering** - the same per-member rules (``to``, ``skip``, ``direct``) for
  live events and for replays of the room's history;
* **replies** - ``ack {id, seq}`` is written only after every frame up to
  ``seq`` this member receives, so a client awaiting its action sees its
  effect first; errors keep their place in the same queue;
* **closing** - a close decided by the room (kick, leave, room closed, replaced)
  ends the room frames at once, but waits for the replies of the member's own
  commands in flight (the ``ack`` of its ``room:leave``, say).

A **viewer** of the room's audience has a session too (``viewer=True``). The hub hands it
only what viewers receive (``aud``), so live events follow the same path as a member's: a
``skip``, ``direct`` or ``resync`` names members, never a viewer, and a ``close`` closes it
when it has no ``userId`` (the room closed) or names the viewer (kicked). Replays of the
room's history are filtered by the viewer rules (:meth:`BusMessage.for_viewer`).

Phases: ``WAITING`` (connecting) -> ``LIVE`` <-> ``RESYNCING`` -> ``CLOSING`` -> ``CLOSED``.
The session does no I/O itself: its :class:`Sink` (the WebSocket handler) does.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from typing import Protocol

from roomd.domain.bus_message import BusMessage
from roomd.protocol import CloseCode
from roomd.transport import frames

log = logging.getLogger("roomd.ws")


class Phase(enum.Enum):
    WAITING = "waiting"  # before the first snapshot or replay: bus events are queued
    LIVE = "live"
    RESYNCING = "resyncing"  # a snapshot is being re-read: bus events are queued
    CLOSING = "closing"  # the room closed this socket: only pending replies are still written
    CLOSED = "closed"


class Sink(Protocol):
    """What a session needs from its transport."""

    def write_wire(self, wire: bytes) -> None:
        """Write one complete WebSocket frame."""

    def close_with(self, code: CloseCode) -> None:
        """Close the connection now."""

    def closing(self, code: CloseCode) -> None:
        """A close is decided but waits for replies; the sink bounds how long."""

    def want_snapshot(self) -> None:
        """Read a snapshot and hand it to :meth:`Session.apply_snapshot` (or close)."""

    def wait_for_room(self, waiting: bool) -> None:
        """Start/stop receiving :meth:`Session.observe` for every event of the room."""


class Session:
    def __init__(self, user_id: str, socket_id: str, sink: Sink, *, viewer: bool = False) -> None:
        self.user_id = user_id
        self.socket_id = socket_id
        self.sink = sink
        self._write = sink.write_wire  # bound once: the fan-out path calls it per socket per event
        self.viewer = viewer
        # Whether a replayed message is for this socket: the member rules or the viewer rules.
        self._for = BusMessage.for_viewer if viewer else BusMessage.for_user
        self.phase = Phase.WAITING
        self.seq = 0  # the room's events up to here are reflected in what the client has
        self.incarnation = ""  # of the room (set from the first snapshot): other incarnations' events are dropped
        self._observed = 0  # the highest room seq this process has seen (for replies)
        self._queue: list[tuple[BusMessage, bytes]] = []
        self._resync_wanted = False
        self._replies: deque[tuple[int, bytes]] = deque()  # (seq to wait for, frame payload)
        self._busy = 0  # client commands being executed
        self._close_code: CloseCode | None = None

    # -- bus events -----------------------------------------------------------

    def deliver(self, msg: BusMessage, wire: bytes) -> None:
        """A live bus event for this member (the hub has applied ``to``)."""
        phase = self.phase
        if phase is Phase.LIVE:
            if msg.inc is not None and msg.inc != self.incarnation:
                return  # an event of another room that had the same code (see the create script)
            seq = msg.seq
            if seq is not None:
                if seq <= self.seq:
                    return
                self.seq = seq
            if msg.plain:  # the fast path: most events
                if msg.skip != self.user_id:
                    self._write(wire)
            else:
                self._special(msg, wire, replay=False)
                self._after_events()
        elif phase is Phase.WAITING or phase is Phase.RESYNCING:
            self._queue.append((msg, wire))
        elif phase is Phase.CLOSING and msg.seq is not None:
            self.observe(msg.seq)

    def observe(self, seq: int) -> None:
        """The room reached ``seq`` in this process (whether or not the event was for us)."""
        if seq > self._observed:
            self._observed = seq
        if self._replies:
            self._flush_replies()

    def _emit(self, msg: BusMessage, wire: bytes, *, replay: bool) -> None:
        """The slow path: ``msg`` may be for someone else (replay), direct, closing or resyncing."""
        if msg.inc is not None and msg.inc != self.incarnation:
            return
        seq = msg.seq
        if seq is not None:
            if seq <= self.seq:
                return
            self.seq = seq
        if replay and not self._for(msg, self.user_id):
            return
        if msg.plain:
            if msg.skip != self.user_id:
                self.sink.write_wire(wire)
        else:
            self._special(msg, wire, replay=replay)

    def _special(self, msg: BusMessage, wire: bytes, *, replay: bool) -> None:
        user_id = self.user_id
        direct = msg.direct
        if direct is not None and direct.get("userId") == user_id:
            self.sink.write_wire(frames.wire(frames.encode(direct["event"], direct["data"], msg.seq)))
        elif msg.skip != user_id:
            self.sink.write_wire(wire)
        if msg.resync is not None and user_id in msg.resync:
            self._resync_wanted = True
        close = msg.close
        # A replay never closes: its closes were for older sockets (this one is newer
        # than every message in it, and a member that left or was kicked cannot connect).
        if (
            not replay
            and close is not None
            and close.get("userId", user_id) == user_id
            and close.get("exceptSocket") != self.socket_id
        ):
            self._close(CloseCode(close["code"]))

    # -- snapshots and replays ------------------------------------------------

    def begin_resync(self) -> bool:
        """The bus may have lost events: re-read a snapshot. True if the caller must read it now."""
        if self.phase is Phase.LIVE:
            self.phase = Phase.RESYNCING
            return True
        if self.phase is Phase.WAITING or self.phase is Phase.RESYNCING:
            self._resync_wanted = True  # the snapshot in flight may predate the loss: read another after it
        return False

    def apply_snapshot(self, payload: bytes, seq: int) -> None:
        """Write ``room:state`` (reflecting ``seq``), then the queued events newer than it."""
        if self.phase is not Phase.WAITING and self.phase is not Phase.RESYNCING:
            return
        if seq < self.seq:
            # A snapshot is read after every event written before it, so its seq can only be lower
            # when Redis itself went back: a failover lost writes the old master had acknowledged
            # (asynchronous replication). The new master's state is the truth now: send it and
            # follow its seq, or every later event would be dropped as "already seen".
            log.warning("the room's history went back (%d < %d): a Redis failover lost writes", seq, self.seq)
        self.sink.write_wire(frames.wire(payload))
        self.seq = seq
        self._go_live()

    def abandon_snapshot(self) -> bool:
        """The snapshot could not be read because the member is gone (kicked, left, replaced, room closed).

        The event that says so is queued, or on its way (it was published before
        the snapshot was refused): write the queued events, so the client gets
        ``user:kicked`` and 4403 rather than a bare 4404. True if the session is
        still open afterwards (the caller closes it unless that event arrives soon).
        """
        if self.phase is Phase.RESYNCING or self.phase is Phase.WAITING:
            self._resync_wanted = False
            self._go_live()
        return self.live

    @property
    def live(self) -> bool:
        return self.phase is Phase.LIVE

    def apply_resumed(self, payload: bytes, messages: list[bytes], seq: int) -> None:
        """Write ``room:resumed``, the missed events this member may receive, then the queued ones."""
        if self.phase is not Phase.WAITING:
            return
        self.sink.write_wire(frames.wire(payload))
        for raw in messages:
            msg = BusMessage.decode(raw)
            self._emit(msg, frames.wire(msg.payload), replay=True)
        self.seq = max(self.seq, seq)
        self._go_live()

    def _go_live(self) -> None:
        self.phase = Phase.LIVE
        queued, self._queue = self._queue, []
        for msg, wire in queued:
            if self.phase is not Phase.LIVE:
                break
            self._emit(msg, wire, replay=False)
        self._after_events()

    def _after_events(self) -> None:
        if self.phase is Phase.LIVE:
            if self._resync_wanted:
                self._resync_wanted = False
                self.phase = Phase.RESYNCING
                self.sink.want_snapshot()
            elif self._replies:
                self._flush_replies()

    # -- replies to the client's own frames -----------------------------------

    def command_started(self) -> None:
        self._busy += 1

    def command_finished(self) -> None:
        self._busy -= 1
        self._maybe_close()

    def reply(self, payload: bytes, after_seq: int = 0) -> None:
        """Queue a reply (``ack`` after ``after_seq``; errors with 0) behind earlier replies."""
        if not self._replies:
            self.sink.wait_for_room(True)
        self._replies.append((after_seq, payload))
        self._flush_replies()

    def _flush_replies(self) -> None:
        if self.phase is not Phase.LIVE and self.phase is not Phase.CLOSING:
            return  # queued events come first; _go_live flushes
        horizon = max(self.seq, self._observed)
        replies = self._replies
        while replies and replies[0][0] <= horizon:
            self.sink.write_wire(frames.wire(replies.popleft()[1]))
        if not replies:
            self.sink.wait_for_room(False)
            self._maybe_close()

    # -- closing ------------------------------------------------------------------

    def _close(self, code: CloseCode) -> None:
        self._queue.clear()
        if self._busy or self._replies:
            self.phase = Phase.CLOSING
            self._close_code = code
            self.sink.closing(code)
        else:
            self.phase = Phase.CLOSED
            self.sink.close_with(code)

    def _maybe_close(self) -> None:
        if self.phase is Phase.CLOSING and not self._busy and not self._replies and self._close_code is not None:
            self.phase = Phase.CLOSED
            self.sink.close_with(self._close_code)

    def closed(self) -> None:
        """The connection is gone: nothing more is written."""
        self.phase = Phase.CLOSED
        self._queue.clear()
        if self._replies:
            self._replies.clear()
            self.sink.wait_for_room(False)
