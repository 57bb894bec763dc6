"""Per-key rate limit: a burst up to the rate, then a wait that says how long."""

from __future__ import annotations

from pantau.subscriptions.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_within_the_rate_pass_and_the_next_one_waits():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    assert all(limiter.acquire("key:a") == 0 for _ in range(60))
    wait = limiter.acquire("key:a")
    assert 0.9 < wait <= 1.0
    assert RateLimiter.retry_after_header(wait) == "1"


def test_one_callers_burst_does_not_limit_another():
    limiter = RateLimiter(3, clock=Clock())
    for _ in range(3):
        limiter.acquire("key:a")
    assert limiter.acquire("key:a") > 0
    assert limiter.acquire("key:b") == 0


def test_capacity_refills_with_time():
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)  # one request per 10 s
    for _ in range(6):
        limiter.acquire("k")
    assert 9 < limiter.acquire("k") <= 10
    clock.now += 10
    assert limiter.acquire("k") == 0


def test_retry_after_is_whole_seconds_never_zero():
    assert RateLimiter.retry_after_header(0.01) == "1"
    assert RateLimiter.retry_after_header(2.2) == "3"


def test_memory_stays_bounded_under_many_callers():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock, max_callers=10)
    for i in range(10):
        limiter.acquire(f"ip:{i}")
    clock.now += 120  # every bucket has refilled
    limiter.acquire("ip:new")
    assert len(limiter._buckets) == 1
