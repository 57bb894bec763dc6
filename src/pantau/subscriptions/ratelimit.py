"""Per-key rate limit: a token bucket per caller (an API key, or the client address for anonymous
reads). `rate_per_minute` requests refill evenly; a burst of that many is allowed. In memory, per
API process: one process serves the API; several replicas would each allow the full rate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, rate_per_minute: int, clock: Callable[[], float] = time.monotonic, max_callers: int = 100_000
    ) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.capacity = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._max_callers = max_callers

    def acquire(self, caller: str) -> float:
        """Take one request for `caller`; returns 0 when allowed, else the seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= self._max_callers:
                self._forget_full_buckets(now)
            bucket = self._buckets[caller] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.per_second

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))

    def _forget_full_buckets(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: bounded memory under many callers.
        full_after = self.capacity / self.per_second
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
