"""Retry schedule for webhook deliveries: exponential with "equal jitter" (half the step fixed, half
random), so retries from many deliveries spread out while the schedule keeps a known minimum span:
a receiver down for less than `guaranteed_retry_span` loses nothing."""

from __future__ import annotations

import random
from collections.abc import Callable


def nominal_delay(failed_attempts: int, initial_s: float, max_s: float) -> float:
    """Step before the next attempt after `failed_attempts` (>= 1) failures: initial * 2^(n-1), capped."""
    if failed_attempts < 1:
        raise ValueError("failed_attempts must be at least 1")
    exponent = min(failed_attempts - 1, 64)  # 2**64 * anything already exceeds any cap
    return min(max_s, initial_s * 2.0**exponent)


def retry_delay(
    failed_attempts: int, initial_s: float, max_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Jittered delay in [step/2, step]."""
    step = nominal_delay(failed_attempts, initial_s, max_s)
    return step / 2 + rand() * step / 2


def guaranteed_retry_span(max_attempts: int, initial_s: float, max_s: float) -> float:
    """The least time between the first and the last attempt, whatever the jitter draws."""
    return sum(nominal_delay(n, initial_s, max_s) / 2 for n in range(1, max_attempts))
