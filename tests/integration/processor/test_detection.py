"""End-to-end detection through a real worker: events in, alerts on the alert topic."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from pantau.contracts import ALERT_TOPIC, HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC, WIB
from pantau.kafka import EventProducer
from pantau.reference import load_reference
from pantau.simulation import Simulation, parse_scenarios
from services.simulator.runner import SimulatorRunner
from tests.integration.processor.events import price, read_closure_alerts

pytestmark = pytest.mark.kafka


def _consumed_all(env, count: int, topics=(PRICE_TOPIC,), timeout_s: float = 90.0) -> None:
    worker = env.workers[-1]
    deadline = time.monotonic() + timeout_s
    while sum(worker.metric("pantau_events_consumed_total", topic=t) for t in topics) < count:
        assert time.monotonic() < deadline, f"worker did not catch up; log:\n{worker.log_tail()}"
        time.sleep(0.2)


def test_a_price_jump_held_two_days_raises_a_price_spike_alert(shared_processor):
    env = shared_processor
    days = [price("beras", "pasar_jatinegara", day, 13_500 + 20 * (day % 2), level="retail", grade="medium")
            for day in range(30)]  # fmt: skip
    jump = [price("beras", "pasar_jatinegara", day, 15_200, level="retail", grade="medium") for day in (30, 31)]
    env.produce([*days, *jump])
    alerts = env.read(ALERT_TOPIC, until=lambda ev: any(a.payload.subject == "price_spike:beras:pasar_jatinegara"
                                                          for a in ev))  # fmt: skip
    (opened,) = [a for a in alerts if a.payload.subject == "price_spike:beras:pasar_jatinegara"]
    assert opened.event_type == "AlertOpened" and opened.payload.severity in ("alert", "crisis")
    assert opened.occurred_at.date() == jump[1].occurred_at.date()  # on the second day, not the first
    assert opened.payload.title.id and opened.payload.action_text.en  # texts for distributors
    signals = {s.name for s in opened.payload.evidence.signals}
    assert any(name.startswith("change_7d") for name in signals)


def test_a_one_day_glitch_raises_no_alert(shared_processor):
    env = shared_processor
    before = env.workers[-1].metric("pantau_events_consumed_total", topic=PRICE_TOPIC)
    days = [price("telur_ayam", "pasar_minggu", day, 28_000 + 50 * (day % 3), level="retail") for day in range(30)]
    glitch = price("telur_ayam", "pasar_minggu", 30, 42_000, level="retail")  # +50 %, one day only
    after = [price("telur_ayam", "pasar_minggu", day, 28_050, level="retail") for day in range(31, 36)]
    sent = env.produce([*days, glitch, *after])
    _consumed_all(env, before + sent)
    alerts = env.read(ALERT_TOPIC, settle_s=0, timeout_s=3)
    assert not [a for a in alerts if a.payload.subject == "price_spike:telur_ayam:pasar_minggu"]


def test_a_ferry_closure_raises_a_route_disruption_and_then_a_supply_gap(processor_env):
    start = datetime(2026, 4, 1, tzinfo=WIB)
    reference = load_reference()
    closure = {"name": "closure", "kind": "ferry_closure", "checkpoint": "bakauheni_port", "at": "+2d", "hours": 30}
    simulation = Simulation(reference, seed=7, start=start, scenarios=parse_scenarios({"scenarios": [closure]},
                                                                                     start, reference))  # fmt: skip
    processor_env.worker("w").start().wait_assigned()
    topics = {t: processor_env.topic(t) for t in (PRICE_TOPIC, SHIPMENT_TOPIC, HARVEST_TOPIC)}
    with EventProducer(processor_env.settings, client_id="test-simulator") as producer:
        runner = SimulatorRunner(simulation, producer, speed=1e9, topic_names=topics)
        stats = runner.run(until=start + timedelta(days=4, hours=12))
    _consumed_all(processor_env, stats.events, topics=(PRICE_TOPIC, SHIPMENT_TOPIC, HARVEST_TOPIC), timeout_s=180)

    onset, end = start + timedelta(days=2), start + timedelta(days=3, hours=6)

    routes, supplies = read_closure_alerts(processor_env, onset, end, timeout_s=90)
    (route,) = routes
    (supply,) = supplies
    assert route.occurred_at < supply.occurred_at
    assert route.payload.affected_volume_kg > 0 and route.payload.place.code == "ferry_crossing"
    assert supply.payload.place.code == "pibc"
