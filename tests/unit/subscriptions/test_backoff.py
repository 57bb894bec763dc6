"""Retry schedule: exponential, capped, jittered, and long enough to outlast a receiver outage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pantau.subscriptions.backoff import guaranteed_retry_span, nominal_delay, retry_delay


def test_steps_double_until_the_cap():
    steps = [nominal_delay(n, 1.0, 300.0) for n in range(1, 12)]
    assert steps == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


@given(
    failed=st.integers(1, 10_000),
    initial=st.floats(0.01, 100),
    cap=st.floats(0.01, 10_000),
    draw=st.floats(0, 1),
)
def test_a_jittered_delay_stays_between_half_the_step_and_the_step(failed, initial, cap, draw):
    step = nominal_delay(failed, initial, cap)
    assert step <= cap
    assert step / 2 <= retry_delay(failed, initial, cap, rand=lambda: draw) <= step


def test_jitter_spreads_retries_of_deliveries_failing_together():
    delays = {round(retry_delay(5, 1.0, 300.0), 6) for _ in range(50)}
    assert len(delays) > 40


def test_the_recommended_defaults_outlast_a_receiver_down_for_half_an_hour():
    # DISPATCHER_MAX_ATTEMPTS=30, DISPATCHER_BACKOFF_INITIAL_SECONDS=1, DISPATCHER_BACKOFF_MAX_SECONDS=300
    assert guaranteed_retry_span(30, 1.0, 300.0) > 30 * 60


def test_few_attempts_with_short_steps_give_up_within_minutes():
    # The old defaults (8 attempts, 1 s .. 300 s) would dead-letter after about a minute of outage.
    assert guaranteed_retry_span(8, 1.0, 300.0) < 2 * 60


def test_zero_failures_has_no_step():
    with pytest.raises(ValueError, match="at least 1"):
        nominal_delay(0, 1.0, 10.0)
