"""A worker that starts on a large backlog (a restart after downtime, a replay) catches up: the
time-driven stage's held items stay a part of the backlog, drain a batch at a time, and its alerts
still come out."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from pantau.contracts import HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC, WIB
from pantau.kafka import EventProducer
from pantau.reference import load_reference
from pantau.simulation import Simulation, parse_scenarios
from services.simulator.runner import SimulatorRunner
from tests.integration.processor.events import read_closure_alerts

pytestmark = pytest.mark.kafka

DAYS = 16  # about 25,000 source events, twice as many repartitioned items held for the safe time


def test_a_worker_started_on_a_large_backlog_drains_its_held_records_and_still_raises_the_closure_alerts(
    processor_env,
):
    start = datetime(2026, 4, 1, tzinfo=WIB)
    reference = load_reference()
    closure = {"name": "closure", "kind": "ferry_closure", "checkpoint": "bakauheni_port", "at": f"+{DAYS - 3}d",
               "hours": 30}  # fmt: skip
    simulation = Simulation(reference, seed=7, start=start, scenarios=parse_scenarios({"scenarios": [closure]},
                                                                                     start, reference))  # fmt: skip
    topics = {t: processor_env.topic(t) for t in (PRICE_TOPIC, SHIPMENT_TOPIC, HARVEST_TOPIC)}
    with EventProducer(processor_env.settings, client_id="test-backlog") as producer:
        stats = SimulatorRunner(simulation, producer, speed=1e9, topic_names=topics).run(
            until=start + timedelta(days=DAYS)
        )
    batch_max = 1000
    # only now: everything above is a backlog
    worker = processor_env.worker("w", PROCESSOR_BATCH_MAX_EVENTS=str(batch_max)).start()
    worker.wait_assigned()

    aggregates = f"{processor_env.app_id}-aggregates-repartition"
    deadline = time.monotonic() + 150
    peak_held = 0.0
    while True:
        worker.assert_running()
        consumed = sum(worker.metric("pantau_events_consumed_total", topic=t) for t in topics)
        held = worker.metric("pantau_processor_held_events", topic=aggregates)
        handed = worker.metric("pantau_events_consumed_total", topic=aggregates)
        peak_held = max(peak_held, held)
        lag = worker.metric("pantau_consumer_lag_messages", topic=aggregates)
        if consumed >= stats.events and handed > 0 and held == 0 and lag == 0:
            break
        assert time.monotonic() < deadline, (
            f"stalled: {consumed:.0f} of {stats.events} source events, {handed:.0f} repartitioned items "
            f"handed, {held:.0f} held, lag {lag:.0f}; log:\n{worker.log_tail()}"
        )
        time.sleep(0.5)
    assert peak_held > 0  # the backlog did make items wait for the safe time
    # the safe time advances while the backlog is read: held items never grow to the whole backlog
    # (they did when only the newest repartition log ends were remembered, and the worker stalled)
    assert peak_held < 0.75 * handed, f"{peak_held:.0f} of {handed:.0f} repartitioned items were held at once"
    # a bundle holds hundreds of items: released a batch at a time all the same (a catch-up batch of
    # every ready item blocked the worker for seconds)
    batches = worker.metric("pantau_processor_processing_seconds_count", topic=aggregates)
    assert batches >= handed / batch_max, f"{handed:.0f} items in {batches:.0f} batches of at most {batch_max}"

    onset, end = start + timedelta(days=DAYS - 3), start + timedelta(days=DAYS - 3, hours=30)

    route, supply = read_closure_alerts(processor_env, onset, end, timeout_s=30)
    assert route, "no route disruption for the closure"
    assert supply, "no supply gap at Cipinang for the closure"
