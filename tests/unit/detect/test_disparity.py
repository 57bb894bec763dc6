"""Jakarta / Lampung price ratio: one judgement per day, when the day closes; alerts only when it leaves
its band on several days; the same whichever province reports first."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from pantau.detect.conditions import Invalid, Severity
from pantau.detect.disparity import DisparityConfig, DisparityPair, DisparityState, step_disparity
from pantau.detect.price import PriceObservation

from .conftest import START, at, kinds, run_lifecycle

RICE = DisparityPair("beras", "prov_31", "prov_18", 1.07, 1.19)
CONFIG = DisparityConfig(pairs=(RICE,))


def both(ratios: list[float], lampung: float = 12_000.0, skip_lampung: set[int] = frozenset()):
    """Per day, Lampung at `lampung` and Jakarta at ratio x Lampung."""
    out = []
    for i, ratio in enumerate(ratios):
        day = START + timedelta(days=i)
        if i not in skip_lampung:
            out.append(PriceObservation("beras", "prov_18", lampung, at(day, 9), province_code="18"))
        out.append(PriceObservation("beras", "prov_31", lampung * ratio, at(day, 10), province_code="31"))
    return out


def run(observations):
    state, conditions = None, []
    for obs in observations:
        state, result = step_disparity(state, obs, RICE, CONFIG)
        conditions.extend(result)
    return state, conditions


def test_ratio_leaving_its_band_for_days_alerts_with_the_evidence(lifecycle_config):
    state, conditions = run(both([1.12] * 10 + [1.24] * 6 + [1.12] * 10))
    assert len(conditions) == 25, "each day is judged once, when the next day's first report closes it"
    assert [c.observed_at.date() for c in conditions[:2]] == [START + timedelta(days=1), START + timedelta(days=2)]
    severities = [c.severity for c in conditions]
    assert severities[10:16] == [Severity.WATCH, Severity.WATCH] + [Severity.ALERT] * 4
    transitions = run_lifecycle(conditions, lifecycle_config)
    assert kinds(transitions) == ["opened", "resolved"]
    opened = transitions[0]
    assert opened.subject == "price_disparity:beras:prov_31:prov_18"
    assert opened.details["ratio"] == 1.24 and opened.details["outside_days"] == 3
    assert "1,24 kali harga di Lampung" in opened.title_id
    assert opened.action_en == "Check for distribution bottlenecks from Lampung to DKI Jakarta."


def test_one_day_glitch_on_either_side_raises_no_alert(lifecycle_config):
    _, conditions = run(both([1.12] * 10 + [1.04] + [1.12] * 10))
    assert max(c.severity for c in conditions) == Severity.WATCH
    assert run_lifecycle(conditions, lifecycle_config) == []


def test_far_outside_the_band_for_days_is_a_crisis():
    _, conditions = run(both([1.12] * 5 + [1.40] * 5))
    assert conditions[-1].severity == Severity.CRISIS  # beyond the band by more than its width (0.12)


def test_a_stale_side_is_not_compared():
    _, conditions = run(both([1.12] * 3 + [1.30] * 5, skip_lampung={3, 4, 5, 6, 7}))
    assert [c.details["ratio"] for c in conditions][-1] == 1.30  # Lampung from day 2 is still fresh ...
    assert conditions[-1].details["denominator_day"] == (START + timedelta(days=2)).isoformat()
    _, later = run(both([1.12] * 3 + [1.30] * 8, skip_lampung=set(range(3, 11))))
    assert later[-1].details["numerator_day"] == (START + timedelta(days=5)).isoformat()  # ... not at day 6+


def test_invalid_price_is_rejected_and_state_round_trips():
    state, _ = run(both([1.12] * 3))
    bad = PriceObservation("beras", "prov_18", -1.0, at(START + timedelta(days=3)), province_code="18")
    same, result = step_disparity(state, bad, RICE, CONFIG)
    assert isinstance(result, Invalid) and same == state
    assert DisparityState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_an_observation_belongs_to_the_pairs_of_its_commodity_and_market():
    chilli = DisparityPair("cabai_merah", "prov_31", "prov_18", 1.0, 1.6)
    rice_markets = DisparityPair("beras", "pasar_induk_cipinang", "prov_18", 1.0, 1.3)
    config = DisparityConfig(pairs=(RICE, chilli, rice_markets))

    def pairs(commodity: str, market: str) -> tuple[DisparityPair, ...]:
        return config.pairs_for(PriceObservation(commodity, market, 10_000.0, at(START, 9)))

    assert pairs("beras", "prov_18") == (RICE, rice_markets)
    assert pairs("beras", "prov_31") == (RICE,)
    assert pairs("cabai_merah", "prov_18") == (chilli,)
    assert pairs("beras", "pasar_induk_cipinang") == (rice_markets,)
    assert pairs("gula_pasir", "prov_31") == ()


@given(
    ratios=st.lists(st.sampled_from([1.0, 1.12, 1.24, 1.45]), min_size=2, max_size=12),
    lampung_first=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_a_days_judgement_does_not_depend_on_which_province_reports_first(ratios, lampung_first):
    """In a processor the two provinces' reports of a day come in either order (partitions, batches)."""
    in_order = both(ratios)
    shuffled = []
    for day in range(len(ratios)):
        lampung, jakarta = in_order[2 * day : 2 * day + 2]
        shuffled += [lampung, jakarta] if lampung_first[day] else [jakarta, lampung]
    _, expected = run(in_order)
    _, conditions = run(shuffled)
    assert conditions == expected
