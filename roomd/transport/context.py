"""The services every handler needs, built once by the app wiring."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from roomd.config import Settings
from roomd.domain.store import RoomStore
from roomd.domain.throttle import Throttle
from roomd.domain.tokens import TokenIssuer
from roomd.fanout import Broker, Hub
from roomd.transport.metrics import Metrics
from roomd.transport.nudges import Nudges


@dataclass
class Services:
    settings: Settings
    store: RoomStore
    tokens: TokenIssuer
    bus: Broker  # roomd/fanout: which one depends on the Redis target
    hub: Hub
    throttle: Throttle
    metrics: Metrics
    # Per-room timers for rate-limited room events (poll:tally, audience:count): reminders, no truth.
    nudges: Nudges = field(default_factory=Nudges)
    draining: bool = False
    inflight: int = 0  # HTTP requests being handled: a drain lets them finish
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference until it ends (and logging failures)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(_finished)
        task.add_done_callback(self.tasks.discard)
        return task


def _finished(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("roomd").error("background task failed", exc_info=task.exception())
