"""Price spike detection on synthetic series: what an officer would check."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pantau.detect.calendar import NO_HOLIDAYS, HolidayCalendar, HolidayWindow
from pantau.detect.conditions import AlertType, Invalid, Severity, TooLate
from pantau.detect.price import PriceConfig, PriceObservation, PriceState, step_price

from .conftest import START, at, daily, kinds, run_lifecycle, run_prices


def calm(days: int, price: float = 13_000.0, seed: int = 1) -> list[float]:
    """A flat series with small daily noise (+-0.2 %), like a quiet PIHPS rice series."""
    rng = random.Random(seed)
    return [price * (1.0 + rng.uniform(-0.002, 0.002)) for _ in range(days)]


def signal(condition, name):
    return next(s for s in condition.signals if s.name == name)


def test_one_day_glitch_raises_no_alert(price_config, lifecycle_config):
    prices = calm(200)
    prices[150] *= 1.30  # one day 30 % up, then back (a PIHPS-style glitch)
    _, conditions, rejected = run_prices(daily(prices), price_config)
    glitch_day = conditions[150]
    assert glitch_day.details["raw_severity"] in ("alert", "crisis")  # the day itself looks alarming ...
    assert glitch_day.severity == Severity.NORMAL  # ... but a move must hold on two days
    assert rejected == []
    assert run_lifecycle(conditions, lifecycle_config) == []


def test_downward_glitch_echo_a_week_later_raises_no_alert(price_config, lifecycle_config):
    prices = calm(200)
    prices[150] *= 0.92  # DKI Jakarta rice 2023-05-10 style: 8 % down for one day
    _, conditions, _ = run_prices(daily(prices), price_config)
    assert all(c.severity < Severity.ALERT for c in conditions)
    assert run_lifecycle(conditions, lifecycle_config) == []


def test_sustained_rise_opens_then_resolves(price_config, lifecycle_config):
    base = calm(200)
    rise = [13_000.0 * (1.0 + 0.10 * i / 14) for i in range(1, 15)]  # +10 % over two weeks
    high = calm(30, 14_300.0, seed=2)
    back = calm(60, 13_000.0, seed=3)
    _, conditions, _ = run_prices(daily(base + rise + high + back), price_config)
    transitions = run_lifecycle(conditions, lifecycle_config)
    assert kinds(transitions)[0] == "opened" and kinds(transitions)[-1] == "resolved"
    assert kinds(transitions).count("opened") == 1
    opened, resolved = transitions[0], transitions[-1]
    rise_start = START + timedelta(days=200)
    assert rise_start <= opened.occurred_at.date() <= rise_start + timedelta(days=14)
    assert opened.severity >= Severity.ALERT
    assert resolved.occurred_at.date() > START + timedelta(days=244)  # only after the price came back
    assert "Pertimbangkan menyalurkan stok SPHP" in opened.action_id


HET_ALERT_LEVEL = 13_500.0 * 1.10  # medium rice HET zone I + 10 %: where the breach signal turns alert


def hovering(pattern: list[bool]) -> list[PriceObservation]:
    """Medium rice at retail hovering +-0.5 % around HET + 10 % (True: just above)."""
    prices = [HET_ALERT_LEVEL * (1.005 if above else 0.995) for above in pattern]
    return daily(prices, grade="medium", start=date(2025, 9, 1))


def test_price_hovering_at_a_threshold_does_not_flap(price_config, lifecycle_config):
    _, conditions, _ = run_prices(hovering([i % 2 == 0 for i in range(120)]), price_config)
    assert {c.details["raw_severity"] for c in conditions} == {"watch", "alert"}  # the raw signal does flap
    assert run_lifecycle(conditions, lifecycle_config) == []  # two days in a row are needed to open


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=30, max_size=150))
def test_any_hovering_pattern_opens_at_most_once_per_hold_and_cooldown(price_config, lifecycle_config, pattern):
    _, conditions, _ = run_prices(hovering(pattern), price_config)
    transitions = run_lifecycle(conditions, lifecycle_config)
    policy = lifecycle_config.policy(AlertType.PRICE_SPIKE)
    opened = [t.occurred_at for t in transitions if t.kind.value == "opened"]
    for first, second in zip(opened, opened[1:], strict=False):
        assert second - first >= policy.resolve_hold + policy.cooldown
    resolved = [t for t in transitions if t.kind.value == "resolved"]
    for t in resolved:
        assert t.occurred_at - t.opened_at >= policy.resolve_hold
    assert all(t.kind.value != "updated" for t in transitions)  # alert <-> watch never re-labels the alert


def test_lebaran_seasonal_rise_is_expected_not_alerted(price_config, lifecycle_config):
    lebaran = START + timedelta(days=220)
    calendar = HolidayCalendar([HolidayWindow("idul_fitri", lebaran, 14, {"daging_ayam": 0.12})])
    with_holiday = dataclasses.replace(price_config, calendar=calendar)
    without_holiday = dataclasses.replace(price_config, calendar=NO_HOLIDAYS)
    prices = []
    for i in range(260):
        day = START + timedelta(days=i)
        prices.append(35_000.0 * (1.0 + calendar.uplift("daging_ayam", (day - date(1970, 1, 1)).days)))
    observations = daily(prices, commodity="daging_ayam", grade="rata_rata")
    _, expected, _ = run_prices(observations, with_holiday)
    _, unexpected, _ = run_prices(observations, without_holiday)
    assert max(prices) == pytest.approx(35_000.0 * 1.12)
    assert run_lifecycle(expected, lifecycle_config) == []
    assert "opened" in kinds(run_lifecycle(unexpected, lifecycle_config))  # the same rise off-holiday alerts
    holiday_day = expected[220]
    assert holiday_day.details["holiday"] == {"code": "idul_fitri", "expected_uplift_pct": pytest.approx(12.0)}


def test_too_late_observation_is_reported_and_changes_nothing(price_config):
    state, _, _ = run_prices(daily(calm(30)), price_config)
    last_day = START + timedelta(days=29)
    late = PriceObservation("beras", "pibc", 13_100.0, at(last_day - timedelta(days=4)), province_code="31")
    new_state, result = step_price(state, late, price_config)
    assert isinstance(result, TooLate)
    assert "2023-01-26" in result.reason and "2023-01-30" in result.reason
    assert new_state == state


def test_late_observation_within_tolerance_updates_its_own_day(price_config):
    prices = calm(30)
    observations = daily(prices)
    missing = observations.pop(27)  # day 27 arrives after day 29
    state, _, _ = run_prices(observations, price_config)
    new_state, result = step_price(state, missing, price_config)
    assert result == []  # history filled in; the latest day's condition stands
    slot = new_state.days.index((missing.occurred_at.date() - date(1970, 1, 1)).days)
    assert new_state.prices[slot] == missing.price_idr
    assert state.prices != new_state.prices


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_arrival_order_within_tolerance_does_not_change_the_model(price_config, data):
    prices = calm(140, seed=data.draw(st.integers(0, 1000)))
    prices[100:] = [p * 1.08 for p in prices[100:]]
    observations = daily(prices)
    shuffled = []
    for chunk_start in range(0, len(observations), 3):  # reorder within 3-day blocks (tolerance is 3)
        chunk = observations[chunk_start : chunk_start + 3]
        shuffled.extend(data.draw(st.permutations(chunk)))
    in_order, _, _ = run_prices(observations, price_config)
    reordered, _, rejected = run_prices(shuffled, price_config)
    assert rejected == []
    fields = ("last_day", "days", "prices", "model_day", "learned_day", "n_obs", "season_n")
    for name in fields:
        assert getattr(reordered, name) == getattr(in_order, name), name
    for name in ("level", "slope", "var"):
        assert getattr(reordered, name) == pytest.approx(getattr(in_order, name), rel=1e-12), name


def test_same_day_repeated_observations_count_once(price_config):
    prices = calm(100)
    observations = daily(prices)
    spike_day = START + timedelta(days=100)
    twice = [
        PriceObservation("beras", "pibc", 16_000.0, at(spike_day, 9), province_code="31"),
        PriceObservation("beras", "pibc", 16_100.0, at(spike_day, 15), province_code="31"),
    ]
    state, conditions, _ = run_prices(observations + twice, price_config)
    assert [c.severity for c in conditions[-2:]] == [Severity.NORMAL, Severity.NORMAL]  # not two days
    assert conditions[-1].details["raw_severity"] != "normal"
    assert state.prices.count(16_100.0) == 1 and 16_000.0 not in state.prices  # latest by event time wins
    older = PriceObservation("beras", "pibc", 15_000.0, at(spike_day, 12), province_code="31")
    same_state, result = step_price(state, older, price_config)
    assert result == [] and same_state == state  # an older same-day value is superseded


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (0.0, "at least 1 rupiah"),
        (0.5, "at least 1 rupiah"),
        (-13_000.0, "at least 1 rupiah"),
        (math.nan, "at least 1 rupiah"),
        (13_000.0 * 25, "20x off the recent median"),
        (13_000.0 / 25, "20x off the recent median"),
    ],
)
def test_invalid_price_is_rejected_and_leaves_the_state_alone(price_config, price, reason):
    state, _, _ = run_prices(daily(calm(30)), price_config)
    bad = PriceObservation("beras", "pibc", price, at(START + timedelta(days=30)), province_code="31")
    new_state, result = step_price(state, bad, price_config)
    assert isinstance(result, Invalid) and reason in result.reason
    assert new_state == state


def test_unknown_commodity_and_naive_time_are_rejected(price_config):
    _, result = step_price(None, PriceObservation("kopi", "pibc", 1.0, at(START)), price_config)
    assert isinstance(result, Invalid) and "kopi" in result.reason
    naive = PriceObservation("beras", "pibc", 13_000.0, at(START).replace(tzinfo=None))
    _, result = step_price(None, naive, price_config)
    assert isinstance(result, Invalid) and "UTC offset" in result.reason


def test_het_breach_applies_only_to_its_grade_level_and_zone(price_config):
    prices = calm(60, 13_400.0) + [15_000.0, 15_000.0]  # 11 % above the 13,500 HET for medium rice
    medium = run_prices(daily(prices, grade="medium", start=date(2025, 9, 1)), price_config)[1]
    breach = signal(medium[-1], "reference_price_excess_pct")
    assert breach.value == pytest.approx(11.11, abs=0.01) and breach.severity == Severity.ALERT
    assert breach.baseline == 13_500 and breach.window == "het"
    assert medium[-1].severity >= Severity.ALERT
    for kwargs in (
        {"grade": "rata_rata"},
        {"grade": "medium", "level": "wholesale"},
        {"grade": "medium", "province": "11"},
    ):
        other = run_prices(daily(prices, start=date(2025, 9, 1), **kwargs), price_config)[1]
        assert all(s.name != "reference_price_excess_pct" for s in other[-1].signals), kwargs
    before = run_prices(daily(prices, grade="medium", start=date(2025, 6, 1)), price_config)[1]
    assert all(s.name != "reference_price_excess_pct" for s in before[-1].signals)  # HET effective 2025-08-22


def test_change_thresholds_are_the_commodity_own(price_config):
    """A 5 % weekly rise is an alert for rice and ordinary for chilli."""
    rice = run_prices(daily(calm(100) + [13_650.0] * 2), price_config)[1][-1]
    chilli = run_prices(daily(calm(100, 40_000.0) + [42_000.0] * 2, commodity="cabai_merah"), price_config)[1][-1]
    assert signal(rice, "change_7d_pct").severity == Severity.ALERT
    assert signal(chilli, "change_7d_pct").severity == Severity.NORMAL


def test_seasonal_deviation_says_when_history_is_too_short(price_config):
    _, conditions, _ = run_prices(daily(calm(120)), price_config)
    early = signal(conditions[10], "seasonal_deviation_sigma")
    assert early.note is not None and "needs 90 days" in early.note
    later = signal(conditions[-1], "seasonal_deviation_sigma")
    assert later.note is not None and "trend only" in later.note  # no seasonal factor before a year
    _, long_run, _ = run_prices(daily(calm(500)), price_config)
    assert signal(long_run[-1], "seasonal_deviation_sigma").note is None


def test_state_round_trips_through_json_and_carries_on_identically(price_config):
    prices = calm(400) + [p * 1.1 for p in calm(30, seed=5)]
    observations = daily(prices)
    state, _, _ = run_prices(observations[:380], price_config)
    restored = PriceState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    _, direct, _ = run_prices(observations[380:], price_config, state)
    _, via_json, _ = run_prices(observations[380:], price_config, restored)
    assert direct == via_json


def test_state_stays_small_however_long_the_series(price_config):
    short, _, _ = run_prices(daily(calm(100)), price_config)
    long, _, _ = run_prices(daily(calm(1500)), price_config)
    size = len(json.dumps(long.to_json()))
    assert size < 4_000
    assert abs(size - len(json.dumps(short.to_json()))) < 200


def test_condition_names_the_series_and_its_evidence(price_config):
    _, conditions, _ = run_prices(daily(calm(100), market="prov_31"), price_config)
    last = conditions[-1]
    assert last.alert_type is AlertType.PRICE_SPIKE
    assert last.subject == "price_spike:beras:prov_31"
    assert [s.name for s in last.signals] == ["change_7d_pct", "change_28d_pct", "seasonal_deviation_sigma"]
    assert last.details["day"] == "2023-04-10" and last.details["price_idr"] == pytest.approx(13_000, rel=0.01)


def test_config_refuses_a_tolerance_longer_than_the_history(price_config):
    with pytest.raises(ValueError, match="late_tolerance_days"):
        PriceConfig(profiles=price_config.profiles, late_tolerance_days=10)
