"""Client-side request budgets: one per process (a token bucket its threads share), or one
per run across every process and machine (a Prefect global concurrency limit with slot decay).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

from domain.errors import FatalServiceError


class RequestBudget(Protocol):
    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        ...


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

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            earliest = now - self.interval_s * (self.burst - 1)
            slot = max(self._next_free, earliest)
            self._next_free = slot + self.interval_s
            wait = max(0.0, slot - now)
        if wait > 0:
            self._sleep(wait)
        return wait


class PrefectRateLimit:
    """A budget every worker process of a run draws from, wherever it runs.

    It is a Prefect global concurrency limit of one slot that decays at the request rate, so
    requests are spaced evenly across all workers, as the token bucket spaces them across
    threads. `ensure_prefect_rate_limit` creates it; the Prefect API holds its state.

    A refused slot is asked for again after a fraction of the spacing, not after the server's
    Retry-After, which grows with every refusal and left a quarter of the budget unused.
    """

    def __init__(self, name: str, per_minute: float, sleep: Callable[[float], None] = time.sleep):
        self.name = name
        self.poll_s = max(0.1, 60.0 / per_minute / 4)
        self._sleep = sleep

    def acquire(self) -> float:
        import httpx
        from prefect.client.orchestration import get_client

        started = time.monotonic()
        with get_client(sync_client=True) as client:
            while True:
                try:
                    granted = client.increment_concurrency_slots([self.name], 1, "rate_limit")
                except httpx.HTTPStatusError as exc:
                    if exc.response.status_code != 423:
                        raise
                    self._sleep(self.poll_s * random.uniform(0.5, 1.5))
                    continue
                if not granted.json():
                    raise FatalServiceError(f"the Prefect rate limit {self.name!r} is missing")
                return time.monotonic() - started


def ensure_prefect_rate_limit(name: str, per_minute: float, headroom: float = 0.02) -> None:
    """Create (or retune) the global concurrency limit `name` at `per_minute` requests."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectAlreadyExists

    decay = per_minute / 60.0 / (1.0 + headroom)
    with get_client(sync_client=True) as client:
        try:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=name, limit=1, slot_decay_per_second=decay, active=True
                )
            )
        except ObjectAlreadyExists:
            client.update_global_concurrency_limit(
                name,
                GlobalConcurrencyLimitUpdate(limit=1, slot_decay_per_second=decay, active=True),
            )


class ResendBudget:
    """The requests a run may send again after their answer was lost, shared by its scenes."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.allowed:
                return False
            self.used += 1
            return True
