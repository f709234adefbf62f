"""A client-side request budget shared by every thread of a process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token bucket: `per_minute` requests a minute, at most `burst` at once.

    With the default burst of 1, requests are spaced evenly, which keeps any 60-second
    window of a long batch at or under `per_minute`, however many threads draw from it.
    `headroom` spaces them slightly wider so that network jitter never pushes a request
    into a window the server already counts as full.
    """

    def __init__(
        self,
        per_minute: float,
        burst: int = 1,
        headroom: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval_s = 60.0 / per_minute * (1.0 + headroom)
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = clock() - self.interval_s * (self.burst - 1)
        self.waited_s = 0.0

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            earliest = now - self.interval_s * (self.burst - 1)
            slot = max(self._next_free, earliest)
            self._next_free = slot + self.interval_s
            wait = max(0.0, slot - now)
            self.waited_s += wait
        if wait > 0:
            self._sleep(wait)
        return wait
