"""Presence never outlives its owner: this instance's side of the socket index.

Every socket's user record names the roomd instance holding it, and each
instance has a socket index in Redis (``roomd:instance:<id>:sockets``, see
roomd/domain/keys.py). Three
duties keep presence true when things go wrong, run from the server's
background loop:

* heartbeat: ``roomd:instances`` says this instance is alive (Redis's clock);
* reaping: members held by an instance whose heartbeat went stale (``kill -9``,
  a lost host) are marked disconnected, with ``user:disconnected`` as for a
  closed socket, by whichever live instance gets there first (one script per
  batch, so exactly once);
* reconciliation: this instance's index is compared with the sockets it really
  holds. An entry without a socket (a disconnect that failed while Redis
  stalled) is disconnected; a socket without an entry on two passes in a row
  (this instance was reaped while it hung, or an event that should have closed
  the socket was lost) is closed with 1001 so its client reconnects and gets
  the truth. A socket that connected while its entry could not be written (a
  Cluster shard failing over: ``RoomStore.unindexed``) gets its entry here first.
"""

from __future__ import annotations

import asyncio
import logging

from roomd.protocol import CloseCode
from roomd.transport.context import Services

log = logging.getLogger("roomd.presence")


class Presence:
    """Heartbeat, reaping and reconciliation for one instance (``services.store.instance_id``)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.timeout = services.settings.instance_timeout_ms / 1000
        # Reconcile a few times per staleness bound; a missing socket is closed on the second pass.
        self.reconcile_interval = max(self.timeout / 3, 0.2)
        self._last_ok: float | None = None
        self._healthy_since = 0.0
        self._next_reconcile = 0.0
        self._suspects: set[str] = set()

    @property
    def interval(self) -> float:
        """Seconds between heartbeats: several per staleness bound, at most one second."""
        return min(1.0, self.timeout / 5)

    async def beat(self) -> None:
        """Heartbeat; reap dead instances; reconcile this instance's sockets when due."""
        loop = asyncio.get_running_loop()
        stale = await self.services.store.heartbeat()
        now = loop.time()
        if self._last_ok is None or now - self._last_ok > self.timeout / 2:
            # Our own heartbeats were interrupted (start, Redis stall, a blocked loop): other
            # instances may look stale only because they could not write either. Wait a full
            # staleness bound of good heartbeats before judging anyone dead.
            self._healthy_since = now
        self._last_ok = now
        if now - self._healthy_since >= self.timeout:
            for instance in stale:
                marked = await self.services.store.reap_instance(instance)
                if marked:
                    log.warning("instance %s is dead: %d member(s) marked disconnected", instance, marked)
        if now >= self._next_reconcile:
            self._next_reconcile = now + self.reconcile_interval
            await self.reconcile()

    async def reconcile(self) -> None:
        """Make the socket index and the sockets this instance holds agree."""
        services, store = self.services, self.services.store
        live = {s.socket_id for s in services.hub.sockets()}
        for socket_id, (code, user_id) in list(store.unindexed.items()):  # connected during a failover
            if socket_id not in live or await store.index_socket(code, user_id, socket_id):
                store.unindexed.pop(socket_id, None)
        registered = {s.socket_id for s in services.hub.sockets() if s.registered} - set(store.unindexed)
        refs = await store.instance_sockets()
        # Read after the index: a socket whose entry we read had joined the hub before its
        # connect script ran, so if it is gone from the hub now, it has closed.
        held = {s.socket_id for s in services.hub.sockets()}
        indexed = {ref.socket_id for ref in refs}
        for ref in refs:
            if ref.socket_id not in held and await store.disconnect(ref.room_code, ref.user_id, ref.socket_id):
                log.info("reconciled: a user of room %s marked disconnected (its socket had closed)", ref.room_code)
        missing = {sid for sid in registered if sid not in indexed}
        for sock in services.hub.sockets():
            if sock.socket_id in missing & self._suspects and sock.registered:
                log.info("reconciled: closing a socket of room %s this instance no longer owns", sock.room_code)
                sock.close(CloseCode.GOING_AWAY, CloseCode.GOING_AWAY.name)
        self._suspects = missing - self._suspects
