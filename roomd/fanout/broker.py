"""The Broker: how a process receives the events of the rooms it holds sockets of.

Domain scripts publish every event of a room on the room's channel
(``keys.channel``; the format is :mod:`roomd.domain.bus_message`). A process
subscribes to a room while it holds at least one socket of it, so adding processes
adds capacity instead of multiplying traffic. The interface is python-socketio's
``PubSubManager`` / Centrifuge's ``Broker`` reduced to what roomd needs:

* :meth:`Broker.subscribe` / :meth:`Broker.unsubscribe` - reference counted per room;
  the last ``unsubscribe`` keeps the subscription for ``linger`` seconds, because
  players reconnect all the time (page reloads, flaky mobile networks) and each of
  those would otherwise cost a subscribe/unsubscribe pair;
* ``deliver(code, raw)`` - every message of a subscribed room, handed to the hub;
* ``on_resubscribed(codes)`` - pub/sub is at-most-once: when a subscription that was
  confirmed is lost (connection dropped, slot moved, failover) and later confirmed
  again, events published in between are gone. The broker then names exactly those
  rooms, *after* the new subscription is confirmed, so the hub re-reads their
  snapshots and nothing published after the snapshot can be missed;
* health - :attr:`Broker.connected` (readiness), :meth:`Broker.health` and the
  ``reconnects`` counter (metrics).

This module holds the bookkeeping every implementation shares (references, linger,
waiters, which confirmed rooms were lost); subclasses only talk to their backend
through :meth:`Broker._request` / :meth:`Broker._drop` and report back with
:meth:`Broker._confirm`, :meth:`Broker._unconfirm` and :meth:`Broker._received`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

log = logging.getLogger("roomd.bus")

Deliver = Callable[[str, bytes], None]
"""``deliver(code, raw)``: one bus message of a subscribed room (must not raise or block)."""

Resubscribed = Callable[[list[str]], Awaitable[None]]
"""``on_resubscribed(codes)``: these rooms' subscriptions were lost and are back: resync them."""


@dataclasses.dataclass(frozen=True)
class BrokerHealth:
    """What ``/metrics`` and operators see of a broker."""

    kind: str  # "memory", "redis", "cluster"
    connected: bool  # every subscription it should hold can be held now
    rooms: int  # rooms subscribed or being subscribed (lingering ones included)
    connections: int  # pub/sub connections open
    reconnects: int  # times subscriptions were lost and re-established


class Broker(abc.ABC):
    """Per-room subscriptions with reference counting, linger, and resync after a loss."""

    kind: ClassVar[str]

    def __init__(
        self,
        deliver: Deliver,
        *,
        on_resubscribed: Resubscribed | None = None,  # may also be assigned later (wiring)
        subscribe_timeout: float = 5.0,
        linger: float = 10.0,
    ) -> None:
        self._deliver = deliver
        self.on_resubscribed = on_resubscribed
        self._subscribe_timeout = subscribe_timeout
        self._linger = linger
        self._refs: dict[str, int] = {}  # room -> local holders (0 while lingering)
        self._confirmed: set[str] = set()  # rooms whose subscription the backend has confirmed
        self._lost: set[str] = set()  # confirmed once, lost since, not confirmed again yet
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        self._resync_due: set[str] = set()
        self._background: set[asyncio.Future[Any]] = set()
        self._closing = False
        self.reconnects = 0

    # -- the interface -------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Whether the broker can hold subscriptions now (readiness: ``/health``, start-up)."""

    @abc.abstractmethod
    async def start(self, wait: float | None = None) -> None:
        """Start the background work; with ``wait``, wait up to that long until :attr:`connected`."""

    async def close(self) -> None:
        """Stop: no more deliveries; connections closed. Subclasses extend it."""
        self._closing = True
        for timer in self._lingering.values():
            timer.cancel()
        self._lingering.clear()
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def subscribe(self, code: str) -> None:
        """Hold a subscription to room ``code``; returns once the backend has confirmed it.

        Raises TimeoutError after ``subscribe_timeout`` (the hold is then dropped): the
        caller cannot promise its socket the room's events.
        """
        timer = self._lingering.pop(code, None)
        if timer is not None:
            timer.cancel()
        self._refs[code] = self._refs.get(code, 0) + 1
        if code in self._confirmed:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(code, [])
        waiters.append(waiter)
        if len(waiters) == 1:
            self._request(code)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._subscribe_timeout)
        except BaseException:
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters and self._waiters.get(code) is waiters:
                del self._waiters[code]
            self.unsubscribe(code)
            raise

    def unsubscribe(self, code: str) -> None:
        """Drop one hold; the last one keeps the subscription ``linger`` seconds more."""
        count = self._refs.get(code, 0) - 1
        if count > 0:
            self._refs[code] = count
            return
        if code not in self._refs:
            return
        self._refs[code] = 0
        if code not in self._lingering and not self._closing:
            self._lingering[code] = asyncio.get_running_loop().call_later(self._linger, self._expire, code)

    def health(self) -> BrokerHealth:
        return BrokerHealth(self.kind, self.connected, len(self._refs), self._connections(), self.reconnects)

    def rooms(self) -> list[str]:
        """Rooms subscribed or being subscribed (lingering ones included)."""
        return list(self._refs)

    # -- what subclasses implement ---------------------------------------------------------------

    @abc.abstractmethod
    def _request(self, code: str) -> None:
        """Ask the backend to subscribe ``code`` (idempotent, never raises, never blocks: spawn).

        Confirm with :meth:`_confirm` when the backend says so. While disconnected it may
        do nothing: a reconnect subscribes every room in :meth:`rooms`.
        """

    @abc.abstractmethod
    def _drop(self, code: str) -> None:
        """Unsubscribe ``code`` at the backend (its last hold lingered out; never raises)."""

    def _connections(self) -> int:
        """Pub/sub connections open now (health)."""
        return 0

    # -- what subclasses call ------------------------------------------------------------------

    def _confirm(self, code: str) -> None:
        """The backend confirmed the subscription of ``code``: wake its waiters; resync it if it was lost."""
        if code not in self._refs:
            return  # dropped meanwhile
        self._confirmed.add(code)
        for waiter in self._waiters.pop(code, []):
            if not waiter.done():
                waiter.set_result(None)
        if code in self._lost:
            self._lost.discard(code)
            self._schedule_resync(code)

    def _unconfirm(self, codes: Iterable[str]) -> None:
        """These rooms' subscriptions are gone (connection lost, slot moved): events may be lost
        from now on until they are confirmed again, when ``on_resubscribed`` names them."""
        for code in codes:
            if code in self._confirmed:
                self._confirmed.discard(code)
                self._lost.add(code)

    def _received(self, code: str, raw: bytes) -> None:
        """A message on the channel of ``code``: to the hub, if the room is held."""
        if code in self._refs:
            try:
                self._deliver(code, raw)
            except Exception:
                log.exception("delivering an event of room %s failed", code)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)
        return task

    # -- internals -------------------------------------------------------------------------------

    def _expire(self, code: str) -> None:
        self._lingering.pop(code, None)
        if self._refs.get(code) != 0:
            return
        del self._refs[code]
        self._confirmed.discard(code)
        self._lost.discard(code)
        self._resync_due.discard(code)
        self._waiters.pop(code, None)
        self._drop(code)

    def _schedule_resync(self, code: str) -> None:
        """Batch the rooms confirmed in one turn of the loop into one ``on_resubscribed`` call."""
        if not self._resync_due:
            asyncio.get_running_loop().call_soon(self._flush_resync)
        self._resync_due.add(code)

    def _flush_resync(self) -> None:
        codes = sorted(code for code in self._resync_due if code in self._refs)
        self._resync_due.clear()
        if codes and self.on_resubscribed is not None and not self._closing:
            log.info("resynchronising %d room(s) after their subscription came back", len(codes))
            self._spawn(self.on_resubscribed(codes))


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("broker task failed", exc_info=task.exception())
