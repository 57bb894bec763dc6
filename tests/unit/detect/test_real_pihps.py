"""The detectors on real Bank Indonesia PIHPS prices (data/pihps/: Lampung and DKI Jakarta, 2022-2026).

This is how we know the price detector works: known rises alert within weeks, known glitches and calm
periods do not, and the replay's precision and recall against labelled episodes stay where they are.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pantau.detect import config as detect_config
from pantau.detect.conditions import Severity
from pantau.detect.evaluate import (
    PIHPS_PROVINCES,
    AlertSpan,
    Series,
    evaluate_pihps,
    one_day_glitches,
    read_pihps,
    replay_disparity,
    replay_prices,
)

LAMPUNG = Series("beras", 10, "prov_18", "18")
JAKARTA = Series("beras", 13, "prov_31", "31")


@pytest.fixture(scope="module")
def replay(price_config, lifecycle_config):
    cache: dict[Series, list[AlertSpan]] = {}

    def alerts(series: Series) -> list[AlertSpan]:
        if series not in cache:
            cache[series] = replay_prices(read_pihps(series), price_config, lifecycle_config).alerts
        return cache[series]

    return alerts


def serious(spans: list[AlertSpan]) -> list[AlertSpan]:
    return [s for s in spans if s.peak_severity >= Severity.ALERT]


@pytest.mark.parametrize("series", [LAMPUNG, JAKARTA], ids=["lampung", "jakarta"])
def test_rice_rise_of_2023_2024_raises_an_alert_within_weeks_of_onset(replay, series):
    onset = date(2023, 8, 15)  # the first rises in both provinces: 18 Aug 2023 (El Nino year)
    opened = [s for s in serious(replay(series)) if onset <= s.opened_on <= onset + timedelta(weeks=5)]
    assert opened, f"no price_spike alert for {series.market_code} rice within five weeks of {onset}"
    assert opened[0].subject == f"price_spike:beras:{series.market_code}"
    assert opened[0].title_en.startswith("Rice price at ")
    march_2024 = [s for s in serious(replay(series)) if s.opened_on <= date(2024, 3, 15) <= (s.resolved_on or date.max)]
    assert march_2024 and march_2024[0].peak_severity == Severity.CRISIS  # the record prices of Feb-Mar 2024


@pytest.mark.parametrize("commodity", ["cabai_merah", "cabai_rawit"])
def test_chilli_spike_of_2022_in_jakarta_raises_an_alert(replay, commodity):
    spans = serious(replay(Series(commodity, 13, "prov_31", "31")))
    assert any(date(2022, 5, 15) <= s.opened_on <= date(2022, 7, 15) for s in spans), [s.opened_on for s in spans]


def test_known_one_day_glitches_raise_no_alert(price_config, lifecycle_config, ref):
    found = {}
    for commodity in (c.code for c in ref.commodities if c.pihps):
        for province_id, market, province in PIHPS_PROVINCES:
            observations = read_pihps(Series(commodity, province_id, market, province))
            glitches = one_day_glitches(observations)
            if not glitches:
                continue
            found[(commodity, market)] = [observations[i].occurred_at.date() for i in glitches]
            without = [o for i, o in enumerate(observations) if i not in set(glitches)]
            with_glitches = replay_prices(observations, price_config, lifecycle_config).alerts
            without_glitches = replay_prices(without, price_config, lifecycle_config).alerts
            opened = [(s.opened_on, s.resolved_on, s.peak_severity) for s in with_glitches]
            assert opened == [(s.opened_on, s.resolved_on, s.peak_severity) for s in without_glitches], (
                commodity,
                market,
            )
            glitch_days = set(found[(commodity, market)])
            assert not any(s.opened_on in glitch_days for s in with_glitches)
    assert date(2023, 5, 10) in found[("beras", "prov_31")]  # the glitch SOURCES.md names
    assert sum(len(days) for days in found.values()) >= 15


@pytest.mark.parametrize("series", [LAMPUNG, JAKARTA], ids=["lampung", "jakarta"])
def test_rice_in_a_calm_period_raises_none(replay, series):
    calm_from, calm_until = date(2024, 5, 1), date(2025, 6, 30)  # after the 2024 peak: flat within ~2 %
    prices = [o.price_idr for o in read_pihps(series) if calm_from <= o.occurred_at.date() <= calm_until]
    assert max(prices) / min(prices) < 1.06
    overlapping = [s for s in replay(series) if s.opened_on <= calm_until and (s.resolved_on or date.max) >= calm_from]
    assert overlapping == []


def test_replay_finds_labelled_episodes_with_useful_precision(price_config, lifecycle_config, ref):
    commodities = [c.code for c in ref.commodities if c.pihps]
    result = evaluate_pihps(price_config, lifecycle_config, commodities)
    print(
        f"\nPIHPS replay: {result.score.alerts} alerts, precision {result.score.precision:.2f}, "
        f"{result.score.episodes} episodes, recall {result.score.recall:.2f}, open {result.open_share:.0%}"
    )
    assert result.score.episodes >= 40  # the labelling rule finds the known rises
    assert result.score.recall >= 0.9
    assert result.score.precision >= 0.45
    assert result.open_share < 0.3  # alerts do not just stay open


def test_jakarta_lampung_rice_ratio_alerts_only_after_leaving_its_band_for_days(ref, lifecycle_config):
    config = detect_config.disparity_config(ref)
    pair = next(p for p in config.pairs if p.commodity == "beras")
    assert (pair.low, pair.high) == (1.07, 1.19)
    observations = read_pihps(JAKARTA) + read_pihps(LAMPUNG)
    result = replay_disparity(observations, pair, config, lifecycle_config)
    opened = [t for t in result.transitions if t.kind.value == "opened"]
    assert opened  # the ratio did leave 1.07-1.19 for days (e.g. ~1.06 in late 2024)
    for t in opened:
        assert t.details["outside_days"] >= config.persist_days
        assert not pair.low <= t.details["ratio"] <= pair.high
