"""How `make eval` (services.processor.evaluate) scores the alerts a replay raised."""

from __future__ import annotations

from datetime import datetime, timedelta

from pantau.contracts import WIB
from pantau.detect.conditions import PlaceKind
from pantau.detect.price import PriceObservation
from services.processor.evaluate import Opened, Row, glitch_alerts, score_scenarios

ONSET = datetime(2026, 4, 10, tzinfo=WIB)
END = ONSET + timedelta(hours=30)


def truth(
    subject: str, alert_type: str | None = "supply_gap", commodity: str | None = "beras", required: bool = True
) -> dict:
    return {
        "alert_subject": subject,
        "expected_alert_type": alert_type,
        "required": required,
        "subject": {"commodity": commodity},
        "onset": ONSET.isoformat(),
        "end": END.isoformat(),
    }


def opened(subject: str, at: datetime, alert_type: str = "supply_gap", commodity: str | None = "beras") -> Opened:
    return Opened(f"id-{subject}-{at.isoformat()}", alert_type, subject, commodity, at)


def test_an_alert_within_its_scenario_window_is_found_with_its_delay_and_others_are_false_positives():
    alerts = [
        opened("supply_gap:beras:pibc", ONSET + timedelta(hours=12)),
        opened("supply_gap:beras:pibc", ONSET + timedelta(days=10)),  # long after the window
        opened("supply_gap:beras:pikj", ONSET),  # a subject with no scenario
    ]
    rows = score_scenarios(alerts, [truth("supply_gap:beras:pibc")])
    row = rows[("supply_gap", "beras")]
    assert (row.expected, row.found, row.alerts, row.true_positives, row.false_positives) == (1, 1, 3, 1, 2)
    assert row.delays_days == [0.5]


def test_an_alert_slightly_before_the_onset_counts_and_one_after_the_late_margin_does_not():
    early = opened("supply_gap:beras:pibc", ONSET - timedelta(hours=20))
    too_late = opened("supply_gap:beras:pibc", END + timedelta(days=2, hours=1))
    found = score_scenarios([early], [truth("supply_gap:beras:pibc")])[("supply_gap", "beras")]
    missed = score_scenarios([too_late], [truth("supply_gap:beras:pibc")])[("supply_gap", "beras")]
    assert (found.found, found.true_positives, found.delays_days) == (1, 1, [0.0])
    assert (missed.found, missed.true_positives, missed.false_positives) == (0, 0, 1)


def test_an_alert_on_a_glitch_that_should_raise_none_is_a_false_positive():
    glitch = truth("price_spike:cabai_rawit:pikj", alert_type=None, commodity="cabai_rawit")
    alert = opened("price_spike:cabai_rawit:pikj", ONSET, alert_type="price_spike", commodity="cabai_rawit")
    row = score_scenarios([alert], [glitch])[("price_spike", "cabai_rawit")]
    assert (row.expected, row.alerts, row.false_positives) == (0, 1, 1)


def test_an_alert_a_scenario_may_raise_is_explained_and_its_absence_is_no_miss():
    small_flows = [truth("supply_gap:nanas:pikj", commodity="nanas", required=False),
                   truth("supply_gap:singkong:pikj", commodity="singkong", required=False)]  # fmt: skip
    rows = score_scenarios([opened("supply_gap:nanas:pikj", ONSET, commodity="nanas")], small_flows)
    assert (rows[("supply_gap", "nanas")].alerts, rows[("supply_gap", "nanas")].true_positives) == (1, 1)
    assert all(row.expected == 0 and row.false_positives == 0 for row in rows.values())


def test_a_row_prints_recall_precision_and_the_median_delay():
    row = Row(alerts=4, true_positives=3, false_positives=1, expected=2, found=1, delays_days=[2.0, 0.5, 1.0])
    assert row.line("supply_gap").split() == ["supply_gap", "4", "3", "1", "1/2", "0.50", "0.75", "1.0"]


def test_an_alert_opened_on_a_one_day_glitch_or_the_next_observation_is_reported_with_it():
    prices = [14_450, 14_450, 13_350, 14_450, 14_450, 14_400, 15_400, 14_400]  # glitches on days 2 and 6
    days = [ONSET + timedelta(days=i) for i in range(len(prices))]
    series = {("beras", "prov_31"): [
        PriceObservation("beras", "prov_31", price, day, "retail", "medium", "31", PlaceKind.PROVINCE)
        for price, day in zip(prices, days, strict=True)
    ]}  # fmt: skip
    on_second = opened("price_spike:beras:prov_31", days[7], alert_type="price_spike")  # the day after it
    other_series = opened("price_spike:beras:prov_18", days[2], alert_type="price_spike")
    found = glitch_alerts([on_second, other_series], series)
    assert found == [(days[2].date(), None), (days[6].date(), on_second)]
