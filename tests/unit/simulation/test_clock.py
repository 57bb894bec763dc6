"""The simulated clock: a default start in the recent past, caught up at SIMULATOR_SPEED, then live."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pantau.contracts import UTC, WIB
from pantau.simulation import SimulatedClock, default_start

NOW = datetime(2026, 11, 26, 7, 43, 12, tzinfo=WIB)


def test_default_start_is_local_midnight_wib_fourteen_days_ago():
    assert default_start(NOW, 14) == datetime(2026, 11, 12, 0, 0, tzinfo=WIB)
    assert default_start(NOW, 14).utcoffset() == timedelta(hours=7)


def test_default_start_counts_days_in_jakarta_not_in_utc():
    # 18:30 UTC on the 25th is already 01:30 on the 26th in Jakarta.
    late_utc = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)
    assert default_start(late_utc, 14) == datetime(2026, 11, 12, 0, 0, tzinfo=WIB)
    assert default_start(late_utc, 0) == datetime(2026, 11, 26, 0, 0, tzinfo=WIB)


def catching_up_clock(speed: float = 600.0) -> SimulatedClock:
    wall = NOW.timestamp()
    return SimulatedClock(origin_wall=wall, origin_sim=default_start(NOW, 14), speed=speed, follow_wall_clock=True)


def test_clock_catches_up_at_its_speed_then_follows_the_wall_clock():
    clock, wall = catching_up_clock(), NOW.timestamp()
    start = default_start(NOW, 14)
    assert clock.simulated(wall) == start
    assert clock.simulated(wall + 60) == start + timedelta(hours=10)  # a minute at 600x
    assert not clock.caught_up(wall + 60)
    assert clock.catch_up_fraction(wall + 60, start) == pytest.approx(10 / (14 * 24 + 7.72), abs=1e-3)

    # 14 days 7 h 43 min behind, gaining 599 s each second: caught up after about 34.4 wall minutes.
    behind = wall - start.timestamp()
    meet = wall + behind / 599
    assert clock.simulated(meet - 5).timestamp() < meet - 5
    assert clock.caught_up(meet + 1)
    for later in (meet + 1, meet + 60, meet + 86400 * 3):  # live: one simulated second per second
        assert clock.simulated(later) == datetime.fromtimestamp(later, WIB)
    assert clock.catch_up_fraction(meet + 1, start) == 1.0


def test_fixed_speed_clock_runs_ahead_of_the_wall_clock():
    start = datetime(2026, 3, 1, tzinfo=WIB)
    clock = SimulatedClock(origin_wall=NOW.timestamp(), origin_sim=start, speed=600.0, follow_wall_clock=False)
    assert clock.simulated(NOW.timestamp() + 86400) == start + timedelta(days=600)
    assert not clock.caught_up(NOW.timestamp() + 86400)


def test_a_speed_far_beyond_the_producer_does_not_overflow():
    clock = SimulatedClock(NOW.timestamp(), datetime(2026, 3, 1, tzinfo=WIB), speed=1e9, follow_wall_clock=False)
    assert clock.simulated(NOW.timestamp() + 3600).year < 4000


@given(
    backfill_days=st.integers(0, 60),
    speed=st.floats(1.5, 10_000),
    offsets=st.lists(st.floats(0, 30 * 86400), min_size=2, max_size=10),
)
def test_followed_clock_never_runs_ahead_of_the_wall_clock_and_never_back(backfill_days, speed, offsets):
    clock = SimulatedClock(NOW.timestamp(), default_start(NOW, backfill_days), speed, follow_wall_clock=True)
    walls = sorted(NOW.timestamp() + offset for offset in offsets)
    simulated = [clock.simulated(wall) for wall in walls]
    assert all(s.timestamp() <= wall + 1e-6 for s, wall in zip(simulated, walls, strict=True))
    assert simulated == sorted(simulated)


@given(
    follow=st.booleans(),
    speed=st.floats(1.0, 100_000),
    ahead_s=st.floats(0, 40 * 86400),
)
def test_an_event_is_due_when_the_simulated_clock_reaches_it(follow, speed, ahead_s):
    start = default_start(NOW, 14)
    clock = SimulatedClock(NOW.timestamp(), start, speed, follow_wall_clock=follow)
    moment = start + timedelta(seconds=ahead_s)
    due = clock.wall_due(moment)
    assert clock.simulated(due + 1e-3) >= moment
    assert clock.simulated(due - 1e-3) < moment or due - 1e-3 < NOW.timestamp()
