"""How `make eval` (services.processor.evaluate) scores the alerts a replay raised."""

from __future__ import annotations

from datetime import datetime, timedelta

from pantau.contracts import WIB
from services.processor.evaluate import Opened, Row, score_scenarios

ONSET = datetime(2026, 4, 10, tzinfo=WIB)
END = ONSET + timedelta(hours=30)


def truth(subject: str, alert_type: str | None = "supply_gap", commodity: str | None = "beras") -> dict:
    return {
        "alert_subject": subject,
        "expected_alert_type": alert_type,
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


def test_a_row_prints_recall_precision_and_the_median_delay():
    row = Row(alerts=4, true_positives=3, false_positives=1, expected=2, found=1, delays_days=[2.0, 0.5, 1.0])
    assert row.line("supply_gap").split() == ["supply_gap", "4", "3", "1", "1/2", "0.50", "0.75", "1.0"]
