"""The in-process broker: pub/sub without Redis, for fast tests of socket and session logic.

It behaves like a Redis subscriber connection seen from roomd: a subscription is
confirmed on a later turn of the event loop, a message reaches only confirmed rooms,
in publish order, on a later turn; :meth:`InProcessBroker.outage` drops the
"connection" (messages published meanwhile are lost, as with Redis pub/sub) and
:meth:`InProcessBroker.restore` brings it back, re-subscribing every held room and
calling ``on_resubscribed`` for the rooms that were lost. Messages are the bytes the
scripts publish (build them with :func:`roomd.domain.bus_message.encode`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from roomd.fanout.broker import Broker, Deliver, Resubscribed


class InProcessBroker(Broker):
    kind = "memory"

    def __init__(
        self,
        deliver: Deliver,
        *,
        on_resubscribed: Resubscribed | None = None,
        subscribe_timeout: float = 5.0,
        linger: float = 10.0,
    ) -> None:
        super().__init__(deliver, on_resubscribed=on_resubscribed, subscribe_timeout=subscribe_timeout, linger=linger)
        self._up = True
        self._down_rooms: set[str] | None = None  # during a partial outage: only these rooms are cut off
        self.published = 0  # messages handed to at least one subscribed room

    @property
    def connected(self) -> bool:
        return self._up

    async def start(self, wait: float | None = None) -> None:
        """Nothing to connect."""

    def publish(self, code: str, raw: bytes) -> int:
        """Publish ``raw`` on room ``code``'s channel; 1 if this process hears it, else 0 (lost)."""
        if not self._reachable(code) or code not in self._confirmed:
            return 0
        self.published += 1
        asyncio.get_running_loop().call_soon(self._received, code, raw)
        return 1

    def outage(self, codes: Iterable[str] | None = None) -> None:
        """Lose the subscriptions of ``codes`` (default: all, as when the connection drops)."""
        if codes is None:
            self._up = False
            self._down_rooms = None
            self._unconfirm(list(self._refs))
        else:
            cut = set(codes)
            self._down_rooms = (self._down_rooms or set()) | cut
            self._unconfirm(cut)

    def restore(self) -> None:
        """The connection is back: every held room is subscribed again (confirmed on a later turn)."""
        self._up = True
        self._down_rooms = None
        self.reconnects += 1
        for code in list(self._refs):
            self._request(code)

    def _reachable(self, code: str) -> bool:
        return self._up and (self._down_rooms is None or code not in self._down_rooms)

    def _request(self, code: str) -> None:
        if self._reachable(code):
            asyncio.get_running_loop().call_soon(self._confirm_if_reachable, code)

    def _confirm_if_reachable(self, code: str) -> None:
        if self._reachable(code):
            self._confirm(code)

    def _drop(self, code: str) -> None:
        self._confirmed.discard(code)
