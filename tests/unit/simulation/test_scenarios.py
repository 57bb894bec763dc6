"""Scenarios do to the event stream what they say, and write the ground truth the evaluation needs."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pantau.contracts import WIB
from pantau.reference import load_reference
from pantau.settings import REPO_ROOT
from pantau.simulation import GroundTruth, ScenarioError, Simulation, load_scenarios, parse_scenarios

START = datetime(2026, 4, 1, tzinfo=WIB)


def scenarios(*items: dict):
    return parse_scenarios({"scenarios": list(items)}, START, load_reference())


def run(found, days: float = 3) -> list:
    """Events and ground truth (GroundTruth items) up to `days` after the start."""
    sim = Simulation(load_reference(), seed=42, start=START, scenarios=found)
    return list(sim.run(until=START + timedelta(days=days)))


def only_events(items: list) -> list:
    return [i for i in items if not isinstance(i, GroundTruth)]


def test_ferry_closure_holds_trucks_at_bakauheni_and_stops_arrivals_in_jakarta():
    closure = scenarios({"name": "closure", "kind": "ferry_closure", "at": "+6h", "hours": 12})
    with_truth = run(closure)
    items, baseline = only_events(with_truth), only_events(run(()))
    onset, end = START + timedelta(hours=6), START + timedelta(hours=18)

    dispatched_eta = {e.payload.shipment_id: e.payload.eta for e in items if e.event_type == "ShipmentDispatched"}
    delayed_at_bakauheni = [
        e for e in items
        if e.event_type == "ShipmentCheckpointPassed" and e.payload.checkpoint_code == "bakauheni_port"
        and onset <= e.occurred_at < end and e.payload.eta - dispatched_eta[e.payload.shipment_id] > timedelta(hours=2)
    ]  # fmt: skip
    assert len(delayed_at_bakauheni) > 50
    ferries = [
        e for e in items if e.event_type == "ShipmentCheckpointPassed" and e.payload.checkpoint_code == "ferry_crossing"
    ]
    assert not [e for e in ferries if onset <= e.occurred_at < end]
    assert [e for e in ferries if e.occurred_at >= end]  # the queue boards after the closure

    def arrivals(stream, begin, finish):
        return sum(
            e.payload.quantity_kg for e in stream
            if e.event_type == "ShipmentArrived" and e.payload.destination_code == "pibc"
            and begin <= e.occurred_at < finish
        )  # fmt: skip

    # Trucks already past Bakauheni still arrive; after ~6 hours nothing does until the queue clears.
    quiet = (onset + timedelta(hours=6), end + timedelta(hours=4))
    assert arrivals(baseline, *quiet) > 500_000
    assert arrivals(items, *quiet) == 0
    truth = [item.line for item in with_truth if isinstance(item, GroundTruth)]
    assert [(t["expected_alert_type"], t["alert_subject"]) for t in truth if t["required"]] == [
        ("route_disruption", "route_disruption:ferry_crossing"),
        ("supply_gap", "supply_gap:beras:pibc"),  # the large flows: rice to Cipinang,
        ("supply_gap", "supply_gap:pisang:pikj"),  # bananas to Kramat Jati (the small ones hold up too few)
    ]
    may_raise = {t["alert_subject"] for t in truth if not t["required"]}  # every small flow may run short
    assert {"supply_gap:bawang_merah:pikj", "supply_gap:nanas:pikj"} <= may_raise
    assert all(subject.startswith("supply_gap:") for subject in may_raise)
    assert truth[0]["onset"] == onset.isoformat() and truth[0]["end"] == end.isoformat()
    assert truth[0]["scenario"] == "closure" and truth[0]["kind"] == "ferry_closure"
    # held in Bakauheni port, the trucks are overdue at the crossing: the processor's route subject
    assert truth[0]["subject"] == {"commodity": None, "place_kind": "checkpoint", "place_code": "ferry_crossing"}
    assert truth[0]["parameters"]["checkpoint"] == "bakauheni_port"


def prices(items, key):
    return {
        e.occurred_at: e.payload.price_idr
        for e in only_events(items)
        if e.event_type == "PriceObserved" and e.payload.kafka_key() == key
    }


def test_price_jump_raises_one_market_and_is_reported_at_once():
    jump = scenarios(
        {"name": "jump", "kind": "price_jump", "commodity": "beras", "market": "pasar_jatinegara", "at": "+30h",
         "days": 1, "change_pct": 20},
    )  # fmt: skip
    base, jumped = prices(run(()), "beras:pasar_jatinegara"), prices(run(jump), "beras:pasar_jatinegara")
    onset = START + timedelta(hours=30)
    extra = [t for t in jumped if t not in base]
    assert len(extra) == 1 and onset <= extra[0] < onset + timedelta(minutes=5)
    for moment, price in jumped.items():
        if moment in base:
            factor = 1.2 if onset <= moment < onset + timedelta(days=1) else 1.0
            assert price == pytest.approx(base[moment] * factor, abs=50)
    other_market = prices(run(jump), "beras:pasar_minggu")
    assert other_market == prices(run(()), "beras:pasar_minggu")


def test_data_glitch_changes_one_day_only_and_expects_no_alert():
    glitch = scenarios({"name": "glitch", "kind": "data_glitch", "commodity": "beras", "market": "prov_31",
                        "at": "+1d", "change_pct": -8})  # fmt: skip
    items = run(glitch)
    base, glitched = prices(run(()), "beras:prov_31"), prices(items, "beras:prov_31")
    changed = [t for t in base if glitched[t] != base[t]]
    assert len(changed) == 1 and changed[0].date() == (START + timedelta(days=1)).date()
    assert glitched[changed[0]] == pytest.approx(base[changed[0]] * 0.92, abs=50)
    truth = [i.line for i in items if isinstance(i, GroundTruth)]
    assert len(truth) == 1 and truth[0]["expected_alert_type"] is None and truth[0]["alert_subject"] is None


def test_harvest_failure_cuts_that_regencys_harvest_only():
    failure = scenarios({"name": "failure", "kind": "harvest_failure", "regency": "18.05", "commodity": "beras",
                         "at": "+0h", "days": 5, "loss_pct": 90})  # fmt: skip

    def harvest(stream):
        total = defaultdict(float)
        for e in only_events(stream):
            if e.event_type == "HarvestReported" and e.occurred_at >= START:
                total[e.payload.regency_code, e.payload.commodity] += e.payload.quantity_kg
        return total

    base, failed = harvest(run(())), harvest(run(failure))
    assert failed["18.05", "beras"] == pytest.approx(base["18.05", "beras"] * 0.1, rel=0.02)
    assert {k: v for k, v in failed.items() if k != ("18.05", "beras")} == {
        k: v for k, v in base.items() if k != ("18.05", "beras")
    }


def test_demand_surge_raises_jakarta_prices_not_lampung():
    surge = scenarios({"name": "surge", "kind": "demand_surge", "commodity": "beras", "destination": "pibc",
                       "at": "+0h", "days": 6, "demand_pct": 40})  # fmt: skip
    items = run(surge, days=5)
    base = run((), days=5)
    last_day = (START + timedelta(days=4)).date()

    def on(stream, key):
        return next(p for t, p in prices(stream, key).items() if t.date() == last_day)

    assert on(items, "beras:pibc") > 1.07 * on(base, "beras:pibc")
    assert on(items, "beras:prov_31") > 1.07 * on(base, "beras:prov_31")
    assert on(items, "beras:prov_18") == pytest.approx(on(base, "beras:prov_18"), rel=0.01)
    expected = {line["alert_subject"] for line in (i.line for i in items if isinstance(i, GroundTruth))}
    assert {"price_spike:beras:pibc", "price_disparity:beras:prov_31:prov_18"} <= expected


def test_scenario_files_in_the_repository_load():
    ref = load_reference()
    start = datetime(2026, 3, 1, tzinfo=WIB)
    demo = load_scenarios(REPO_ROOT / "scenarios" / "demo.yaml", start, ref)
    evaluation = load_scenarios(REPO_ROOT / "scenarios" / "eval.yaml", start, ref)
    assert {s.kind for s in demo} == {s.kind for s in evaluation} == {
        "ferry_closure", "harvest_failure", "demand_surge", "price_jump", "data_glitch",
    }  # fmt: skip
    early = {s.kind: s.onset - start for s in demo}
    assert early["ferry_closure"] <= timedelta(hours=2) and early["price_jump"] <= timedelta(hours=0)


@pytest.mark.parametrize("start", [datetime(2026, 11, 12, tzinfo=WIB), datetime(2031, 6, 1, tzinfo=WIB)])
def test_demo_scenarios_play_out_in_the_first_minutes_of_make_run_whatever_the_date(start):
    """At the default SIMULATOR_SPEED (600) the first run catches up 14 days: the demo must show its
    price jump and ferry closure within five wall minutes and start everything within a quarter hour."""
    demo = load_scenarios(REPO_ROOT / "scenarios" / "demo.yaml", start, load_reference())
    wall_minutes = {s.kind: (s.onset - start).total_seconds() / 600 / 60 for s in demo}
    assert wall_minutes["price_jump"] <= 0 and wall_minutes["ferry_closure"] <= 1  # warm-up day, +1h
    assert all(minutes <= 15 for minutes in wall_minutes.values()), wall_minutes
    assert all(s.onset - start < timedelta(days=14) for s in demo)  # all within the default backfill


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "x", "kind": "flood", "at": "+1h"}, r"scenarios\[0\]\.kind: 'flood' is not one of"),
        ({"name": "x", "kind": "ferry_closure", "at": "+1h"}, r"\(x\)\.hours: expected a number, got None"),
        ({"name": "x", "kind": "ferry_closure", "at": "soon", "hours": 2}, r"\(x\)\.at: 'soon' is neither"),
        ({"name": "x", "kind": "ferry_closure", "at": "2026-04-01T00:00:00", "hours": 2}, "has no UTC offset"),
        ({"name": "x", "kind": "price_jump", "commodity": "beras", "market": "atlantis", "at": "+1h",
          "change_pct": 5}, r"\(x\)\.market: unknown market 'atlantis'"),
        ({"name": "x", "kind": "harvest_failure", "regency": "18.06", "commodity": "beras", "at": "+1h",
          "days": 2, "loss_pct": 50}, "regency 18.06 does not grow 'beras'"),
        ({"name": "x", "kind": "ferry_closure", "at": "+1h", "hours": 2, "colour": "red"},
         r"unknown field\(s\) \['colour'\]"),
        ({"name": "Bad Name", "kind": "ferry_closure", "at": "+1h", "hours": 2}, r"\.name: give a name"),
        ({"name": "x", "kind": "ferry_closure", "at": "+1h", "hours": 2, "expect": [
            {"alert_type": "supply_gap", "place_kind": "destination", "place_code": "pikj", "commodity": "nanas",
             "required": "maybe"}]}, r"\(x\)\.expect\[0\]\.required: expected true or false, got 'maybe'"),
    ],
)  # fmt: skip
def test_a_wrong_scenario_is_refused_naming_the_field(item, message):
    with pytest.raises(ScenarioError, match=message):
        scenarios(item)


def test_missing_scenario_file_names_the_setting(tmp_path: Path):
    with pytest.raises(ScenarioError, match="SIMULATOR_SCENARIO_FILE"):
        load_scenarios(tmp_path / "nope.yaml", START, load_reference())
