"""Nudges: at most one pending timer per key ("run this room's tally at T"), holding no truth.

Some room events are rate-limited in Redis rather than in a process: ``poll:tally`` at most every
250 ms, ``audience:count`` at most every second. The script that sees a change it may not publish
yet records it in the room (``dirty``, the last publish time) and answers "due at T". The roomd
instance that ran it then keeps **one** timer per room and purpose, whatever the number of votes
or connects behind it, and at T runs the script that publishes if (and only if) the room still
says so; that script may answer a later T, and the timer is set again.

The timer is only a reminder: another instance may publish first (its script then finds nothing
to do), and a nudge lost with its process costs freshness, never correctness (the next change, or
the poll's close, publishes from Redis's state). So nothing here is shared, persisted or awaited
by a client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.domain.store import now_ms

log = logging.getLogger("roomd.nudges")

Run = Callable[[], Awaitable[int | None]]
"""What a nudge runs: a script that publishes if due, returning when to run again (ms) or None."""

MAX_DELAY_MS = 1_000  # a due time further ahead (another instance's clock) is re-asked after this
RETRY_MS = 500  # Redis unavailable: try again after this...
RETRIES = 3  # ...this many times, then leave it to the next change


class Nudges:
    """Per-key one-shot timers on the running event loop; ``at`` de-duplicates by key."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, tuple[int, asyncio.TimerHandle]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def at(self, key: Hashable, due_ms: int, run: Run) -> None:
        """Run ``run`` at ``due_ms`` (epoch ms) unless a timer for ``key`` is due by then already."""
        self._schedule(key, due_ms, run, RETRIES)

    def _schedule(self, key: Hashable, due_ms: int, run: Run, retries: int) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            if pending[0] <= due_ms:
                return
            pending[1].cancel()  # an earlier one is wanted (rare: clocks, or a retry)
        delay = min(max(due_ms - now_ms(), 0), MAX_DELAY_MS) / 1000
        handle = asyncio.get_running_loop().call_later(delay, self._fire, key, run, retries)
        self._pending[key] = (due_ms, handle)

    def _fire(self, key: Hashable, run: Run, retries: int) -> None:
        self._pending.pop(key, None)
        task = asyncio.ensure_future(self._run(key, run, retries))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, key: Hashable, run: Run, retries: int) -> None:
        try:
            due = await run()
        except StoreUnavailable as exc:
            if retries > 0:
                self._schedule(key, now_ms() + RETRY_MS, run, retries - 1)
            else:
                log.warning("nudge %s dropped: Redis unavailable (%s)", key, exc)
            return
        except DomainError:
            return  # the room is gone or changed: nothing left to publish
        except Exception:
            log.exception("nudge %s failed", key)
            return
        if due is not None:
            self._schedule(key, due, run, RETRIES)

    def cancel(self) -> None:
        """Drop every pending timer (shutdown); runs in flight finish on their own."""
        for _, handle in self._pending.values():
            handle.cancel()
        self._pending.clear()

    def __len__(self) -> int:
        """Timers pending (the metric of how many rooms wait for a nudge)."""
        return len(self._pending)
