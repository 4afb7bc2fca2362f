"""Per-connection WebSocket message rate limiting (a token bucket in process memory).

Local state is fine here: it describes one TCP connection, not a room.
"""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` messages per second on average, bursts up to ``burst``.

    ``refused`` counts refusals and decays at the same rate, so a client that
    keeps flooding (more than ``burst`` refusals outstanding) can be told apart
    from one that merely bursts.
    """

    __slots__ = ("_stamp", "burst", "rate", "refused", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.refused = 0.0
        self._stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        elapsed = now - self._stamp
        self._stamp = now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.refused = max(0.0, self.refused - elapsed * self.rate)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False

    @property
    def flooding(self) -> bool:
        return self.refused > self.burst
