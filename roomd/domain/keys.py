"""Every Redis key and pub/sub channel name of roomd: the one owner of the key layout.

roomd, roomctl and the tests ask this module for a name and never format one
themselves; the Lua scripts build none either: each receives every key it
touches in ``KEYS`` (a room script the twelve of :meth:`Layout.room_keys`, in
that order), so every script can run on Redis Cluster.

**Hash tags.** Every key of a room carries its code as a hash tag
(``room:{KXQD}``, ``room:{KXQD}:users``, ...), so all of a room lives in one
cluster slot and each room operation is one script on one node. The room's
events channel (``room:{KXQD}:events``) hashes to the same slot, where the
scripts ``SPUBLISH`` on a Cluster.

**Cross-room indexes** (``rooms:index``, ``rooms:expiry``, ``rooms:hostless``,
``roomd:instances``, each instance's socket index) are never written by a room
script: :mod:`roomd.domain.store` updates them from Python right after the
script, idempotently, and the sweeps re-check the room itself before acting on
an entry, so an index that lags never closes a live room nor hands over a host
who came back.

**Prefix.** ``REDIS_KEY_PREFIX`` (default empty) is put before every name,
channels included, so several deployments can share one Redis. It may not
contain ``{`` or ``}`` (the hash tag must stay the room's code).
:func:`configure` sets it for the whole process (``RoomStore.from_settings``
does, for roomd and roomctl alike); :func:`layout` returns the layout in use.

Any change of a name or of what a key holds is a Redis-layout change, listed
for operators in CHANGELOG.md (``roomd.domain.layout`` detects the previous
layout and ``roomctl migrate`` converts it). All times stored are integer
milliseconds since the epoch.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

PREFIX_PATTERN = re.compile(r"[A-Za-z0-9:._-]{0,64}")
"""What ``REDIS_KEY_PREFIX`` may hold: no braces (they would replace the room's hash tag), no
spaces or glob characters (roomctl matches channel patterns under the prefix)."""

ROOM_KEY_COUNT = 12
"""How many keys every room script receives (:meth:`Layout.room_keys`)."""


@dataclass(frozen=True)
class Layout:
    """The names under one prefix. Methods taking a ``code`` name the keys of that room."""

    prefix: str = ""

    # -- one room: every key carries the {CODE} hash tag -------------------------------

    def room(self, code: str) -> str:
        """``room:{CODE}``: string, the room's JSON record (host, lock, capacity, ``seq``,
        ``joinSeq``, rules, times). Carries the room's TTL; its absence means the room is gone."""
        return f"{self.prefix}room:{{{code}}}"

    def users(self, code: str) -> str:
        """``room:{CODE}:users``: hash, member user id -> the member's JSON record (display
        name, room code, presence, current socket and instance, join order); same TTL as the room.
        A member is found through the room its token names, never by id alone."""
        return f"{self.prefix}room:{{{code}}}:users"

    def history(self, code: str) -> str:
        """``room:{CODE}:history``: list of the room's last ``historySize`` bus messages (as
        published, recipients in their meta), newest last, same TTL as the room. ``?since=``
        replays are read from it."""
        return f"{self.prefix}room:{{{code}}}:history"

    def state(self, code: str) -> str:
        """``room:{CODE}:state``: hash, state key -> JSON ``{version, visibleTo, writableBy, size}``
        of each shared state entry (its value is in :meth:`values`), same TTL as the room."""
        return f"{self.prefix}room:{{{code}}}:state"

    def values(self, code: str) -> str:
        """``room:{CODE}:state:values``: hash, state key -> the entry's value as JSON text, kept
        apart so that scripts splice it into frames verbatim, never re-encoding it."""
        return f"{self.prefix}room:{{{code}}}:state:values"

    def claim(self, code: str) -> str:
        """``room:{CODE}:claim``: string, JSON ``{incarnation, createdAt}`` of the room holding the
        code. Outlives the room record by ``CLAIM_GRACE_MS``: while it exists the code is not
        handed out again, and the expiry sweep script that deletes it is the one that tells the
        members of an expired room ``room:closed {EXPIRED}`` (exactly once). Deleted with the room
        on close or when its last member leaves."""
        return f"{self.prefix}room:{{{code}}}:claim"

    def channel(self, code: str) -> str:
        """``room:{CODE}:events``: the pub/sub channel of a room's events (same slot as its keys).
        Each message is ``<meta JSON>\\n<frame JSON>``, published by the script that made the change."""
        return f"{self.prefix}room:{{{code}}}:events"

    # -- the audience and its polls (rooms created with ``audience: true``) -----------------

    def audience(self, code: str) -> str:
        """``room:{CODE}:audience``: hash, audience id -> JSON ``{id, displayName, joinedAt}`` of each
        admitted viewer (``POST /rooms/:code/audience``). A viewer's token is live while its id is
        here (a kick removes it). Same TTL as the room (rooms with an audience only)."""
        return f"{self.prefix}room:{{{code}}}:audience"

    def audience_online(self, code: str) -> str:
        """``room:{CODE}:audience:online``: hash, roomd instance id -> connected viewer sockets it
        holds, written by that instance on every viewer connect/disconnect (its own count, not an
        increment: O(1) per viewer, and a lost or reordered write is repaired by the next). The
        audience size is the sum over *live* instances; ``lua/audience_count.lua`` drops the fields
        of dead ones."""
        return f"{self.prefix}room:{{{code}}}:audience:online"

    def poll(self, code: str) -> str:
        """``room:{CODE}:poll``: hash of the current (or last) poll: ``id``, ``choices`` (JSON
        list), ``prompt``, ``public`` and ``open`` ("1"/"0"), ``tallyAt`` (ms of the last tally
        published), ``dirty`` ("1"/"0": votes since that tally)."""
        return f"{self.prefix}room:{{{code}}}:poll"

    def poll_votes(self, code: str) -> str:
        """``room:{CODE}:poll:votes``: hash, audience id -> the choice it voted for in the current poll."""
        return f"{self.prefix}room:{{{code}}}:poll:votes"

    def poll_counts(self, code: str) -> str:
        """``room:{CODE}:poll:counts``: hash, choice -> votes for it in the current poll (kept with
        every vote, so a tally is one HGETALL, never a count over the votes)."""
        return f"{self.prefix}room:{{{code}}}:poll:counts"

    def room_keys(self, code: str) -> tuple[str, ...]:
        """``KEYS`` of every room script (:data:`ROOM_KEY_COUNT`), in the order ``lua/prelude.lua``
        names them: record, users, history, state, values, claim, channel, audience, audience
        online, poll, poll votes, poll counts."""
        return (
            self.room(code),
            self.users(code),
            self.history(code),
            self.state(code),
            self.values(code),
            self.claim(code),
            self.channel(code),
            self.audience(code),
            self.audience_online(code),
            self.poll(code),
            self.poll_votes(code),
            self.poll_counts(code),
        )

    def room_of_channel(self, name: str) -> str | None:
        """The room code of a :meth:`channel` name; None for any other channel."""
        head, tail = f"{self.prefix}room:{{", "}:events"
        if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
            return name[len(head) : -len(tail)]
        return None

    def every_room_channel(self) -> str:
        """A PSUBSCRIBE pattern matching every room's channel (one Redis or Sentinel only)."""
        return f"{self.prefix}room:{{*}}:events"

    # -- cross-room indexes: written from Python, never by a room script -----------------

    @property
    def index(self) -> str:
        """``rooms:index``: sorted set, room code -> ``createdAt``. Lists rooms newest first
        (``roomctl rooms list``) without SCAN. Added after the create script; removed after the
        room's deletion (only if the score is still that room's ``createdAt``, so a new room that
        took the code meanwhile stays listed). Stale entries are skipped by readers."""
        return f"{self.prefix}rooms:index"

    @property
    def expiry(self) -> str:
        """``rooms:expiry``: sorted set, :func:`scheduled` ``code|incarnation`` -> a time at or
        before which the room must be looked at again (its ``expiresAt`` when created). Swept
        every second by each roomd instance: the sweep script re-checks the room itself,
        re-arms the entry with the room's real deadline if it is alive, tells the members of an
        expired room ``room:closed {EXPIRED}`` (exactly once: the claim decides), and drops
        entries of rooms that are gone. Touches do not move it: a live room costs one re-check
        per TTL. The incarnation in the member keeps a room that reuses the code apart: deleting
        one room's entry never touches another's."""
        return f"{self.prefix}rooms:expiry"

    @property
    def hostless(self) -> str:
        """``rooms:hostless``: sorted set, :func:`scheduled` ``code|incarnation`` -> ms since which
        the host of a ``hostMigration: "disconnect"`` room has had no socket
        (``room.hostAwaySince``). Added after the script that saw the host go; swept every second
        by each roomd instance: past HOST_GRACE_SECONDS the host role passes to the
        longest-standing connected member (``lua/host_grace.lua`` re-checks). Rooms with nobody
        connected leave it until someone connects."""
        return f"{self.prefix}rooms:hostless"

    @property
    def instances(self) -> str:
        """``roomd:instances``: sorted set, instance id (``host:pid:port:random``, new at every
        start) -> last heartbeat (Redis's clock), written every second by each roomd process
        (``lua/heartbeat.lua``). Read by ``roomctl stats``, and by live instances to find dead ones
        (older than INSTANCE_TIMEOUT_MS) whose members must be marked disconnected; an entry is
        removed once its socket index is empty."""
        return f"{self.prefix}roomd:instances"

    def instance_sockets(self, instance: str) -> str:
        """``roomd:instance:<id>:sockets``: set of ``code|userId|socketId`` entries, one per socket
        the instance holds (added before the connect script, removed after the disconnect), so
        live instances can disconnect the members of a dead one without SCAN."""
        return f"{self.prefix}roomd:instance:{instance}:sockets"

    # -- other -----------------------------------------------------------------------------

    def throttle(self, client: str, window: int) -> str:
        """``throttle:{client}:<window>``: string, the request count of one fixed window of one
        client, expiring after two windows. The client is the hash tag: both windows a request
        reads are in one slot."""
        return f"{self.prefix}throttle:{{{client}}}:{window}"

    @property
    def throttle_prefix(self) -> str:
        """What every :meth:`throttle` name starts with."""
        return f"{self.prefix}throttle:"

    def bus_self_channel(self, token: str) -> str:
        """``roomd:bus:<token>``: one process's private self-check channel: the bus publishes a ping
        there and must hear it back, or it rebuilds its deaf subscriber connection."""
        return f"{self.prefix}roomd:bus:{token}"

    @property
    def bus_self_prefix(self) -> str:
        return f"{self.prefix}roomd:bus:"


def scheduled(code: str, incarnation: str) -> str:
    """A member of ``rooms:expiry`` and ``rooms:hostless``: the room's code and incarnation."""
    return f"{code}|{incarnation}"


def parse_scheduled(member: str) -> tuple[str, str]:
    """``(code, incarnation)`` of a :func:`scheduled` member (incarnation "" if it has none)."""
    code, _, incarnation = member.partition("|")
    return code, incarnation


def socket_entry(code: str, user_id: str, socket_id: str) -> str:
    """An entry of an instance's socket index (:meth:`Layout.instance_sockets`)."""
    return f"{code}|{user_id}|{socket_id}"


def parse_socket_entry(entry: str) -> tuple[str, str, str] | None:
    """``(code, user_id, socket_id)`` of a :func:`socket_entry`; None if malformed."""
    code, bar, rest = entry.partition("|")
    user_id, bar2, socket_id = rest.partition("|")
    if not (bar and bar2 and code and user_id and socket_id):
        return None
    return code, user_id, socket_id


def check_prefix(prefix: str) -> str:
    """``prefix`` if it may be a REDIS_KEY_PREFIX, else ValueError saying why."""
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError("letters, digits and : . _ - only (no braces, spaces or glob characters), at most 64")
    return prefix


_active = Layout()


def configure(prefix: str) -> Layout:
    """Use ``prefix`` (REDIS_KEY_PREFIX) for every name this process builds from now on."""
    global _active
    _active = Layout(check_prefix(prefix))
    return _active


def layout() -> Layout:
    """The layout in use (:func:`configure`)."""
    return _active


@contextlib.contextmanager
def using(prefix: str) -> Iterator[Layout]:
    """Tests: a prefix for the duration of a ``with`` block."""
    global _active
    before = _active
    try:
        yield configure(prefix)
    finally:
        _active = before


# Module-level shorthands for the layout in use (the bus and older callers use these).


def room_key(code: str) -> str:
    return _active.room(code)


def users_key(code: str) -> str:
    return _active.users(code)


def history_key(code: str) -> str:
    return _active.history(code)


def state_key(code: str) -> str:
    return _active.state(code)


def values_key(code: str) -> str:
    return _active.values(code)


def claim_key(code: str) -> str:
    return _active.claim(code)


def channel(code: str) -> str:
    return _active.channel(code)


def room_of_channel(name: str) -> str | None:
    return _active.room_of_channel(name)


def bus_self_channel(token: str) -> str:
    return _active.bus_self_channel(token)


def index_key() -> str:
    return _active.index


def expiry_key() -> str:
    return _active.expiry


def hostless_key() -> str:
    return _active.hostless


def instances_key() -> str:
    return _active.instances


def instance_sockets_key(instance: str) -> str:
    return _active.instance_sockets(instance)


class Legacy:
    """The names of roomd's previous key layout (before the ``{CODE}`` hash tags), frozen: only
    :mod:`roomd.domain.layout` uses them, to detect that layout at start and to migrate it
    (``roomctl migrate``). It had no prefix, a string per member (``user:<id>``) not tied to its
    room, and the cross-room indexes written inside the room scripts."""

    INDEX = "rooms:index"
    EXPIRY = "rooms:expiry"
    HOSTLESS = "rooms:hostless"
    INCARNATIONS = "rooms:incarnations"  # HASH code -> incarnation: only the previous layout has it
    INSTANCES = "roomd:instances"

    @staticmethod
    def room(code: str) -> str:
        return f"room:{code}"

    @staticmethod
    def users(code: str) -> str:
        """A SET of member ids (each member's record is :meth:`user`)."""
        return f"room:{code}:users"

    @staticmethod
    def user(user_id: str) -> str:
        return f"user:{user_id}"

    @staticmethod
    def history(code: str) -> str:
        return f"room:{code}:history"

    @staticmethod
    def state(code: str) -> str:
        return f"room:{code}:state"

    @staticmethod
    def values(code: str) -> str:
        return f"room:{code}:state:values"

    @staticmethod
    def instance_sockets(instance: str) -> str:
        return f"roomd:instance:{instance}:sockets"
