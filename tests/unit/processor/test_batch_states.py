"""The price and aggregates stages step a key's detector and alert states in place on the batch's own
copies: a key that comes many times in one batch must end exactly where one event per batch ends, and
a batch that is never committed must leave the stored states as they were."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from faust.types import TP

from pantau.contracts import SHIPMENT_TOPIC, WIB, PriceObserved, encode_event, kafka_key, new_event
from pantau.reference import load_reference
from pantau.settings import Settings
from pantau.simulation import Simulation
from pantau.simulation.engine import GroundTruth
from pantau.simulation.scenarios import parse_scenarios
from services.processor.work import Work
from tests.unit.processor.harness import Harness

START = datetime(2026, 1, 5, 9, tzinfo=WIB)
MARKETS = ("pasar_induk_kramat_jati", "pasar_bandar_jaya")


def price_events(days: int) -> list:
    """Daily beras prices at two markets: flat, then a 30 % jump that holds (opens an alert), then back."""
    events = []
    for day in range(days):
        factor = 1.3 if 30 <= day < 40 else 1.0
        for i, market in enumerate(MARKETS):
            payload = PriceObserved(commodity="beras", quality_grade="medium", market_code=market,
                                    province_code="31" if i == 0 else "18", price_level="wholesale", unit="kg",
                                    price_idr_per_kg=(12_000.0 + 10 * (day % 5)) * factor)  # fmt: skip
            events.append(new_event(payload, occurred_at=START + timedelta(days=day), source="test"))
    return events


def run_price_batch(harness: Harness, events: list) -> None:
    """All `events` as one batch of the price stage (committed; its forwards follow)."""
    topic = harness.processor.stages["price"].topic
    harness.run("price", [harness.message(topic, kafka_key(e).encode(), encode_event(e)) for e in events])


def alert_values(harness: Harness) -> list[tuple[str, str, dict]]:
    """(event id, type, payload) of each alert event (produced_at is wall time)."""
    events = [orjson.loads(r.value) for r in harness.outputs if r.topic == harness.processor.topics.alert]
    return [(e["event_id"], e["event_type"], e["payload"]) for e in events]


def table_bytes(harness: Harness, name: str = "price") -> dict[str, bytes]:
    table = harness.processor.tables[name]
    return {key: state.to_bytes() for key, state in table.table.data.data.items()}


def test_one_batch_of_many_events_per_key_ends_where_one_event_per_batch_ends():
    events = price_events(60)
    one_by_one, all_at_once = Harness.create(), Harness.create()
    for event in events:
        run_price_batch(one_by_one, [event])
    run_price_batch(all_at_once, events)
    kinds = [kind for _, kind, _ in alert_values(one_by_one)]
    assert "AlertOpened" in kinds and "AlertResolved" in kinds, "the jump must open an alert, the fall resolve it"
    assert alert_values(all_at_once) == alert_values(one_by_one)
    assert table_bytes(all_at_once) == table_bytes(one_by_one)


def test_a_batch_that_is_not_committed_leaves_the_stored_states_untouched():
    harness = Harness.create()
    events = price_events(45)
    run_price_batch(harness, events[:60])  # 30 calm days, committed
    committed = table_bytes(harness)
    stage = harness.processor.stages["price"]
    work = Work(TP(stage.topic, 0), None, harness.processor.runner.outputs)
    for event in events[60:]:  # the jump: alerts and new states, staged only
        stage.handle(work, harness.message(stage.topic, kafka_key(event).encode(), encode_event(event)))
    assert work.records, "the uncommitted batch opened alerts"
    assert table_bytes(harness) == committed


def test_an_aggregates_batch_that_is_not_committed_leaves_the_stored_states_untouched():
    simulation = Simulation(load_reference(), seed=42, start=START, scenarios=())
    events = [
        item
        for item in simulation.run(until=START + timedelta(days=2))
        if not isinstance(item, GroundTruth) and item.payload.TOPIC != "pangan.price.v1"
    ]
    half = len(events) // 2
    harness = Harness.create()
    harness.feed(events[:half])  # committed: shipment and harvest states, then the aggregates
    aggregates = ("supply", "route", "harvest")
    committed = {name: table_bytes(harness, name) for name in aggregates}
    assert all(committed.values())
    outputs = harness.processor.runner.outputs
    shipment, aggregate = harness.processor.stages["shipment"], harness.processor.stages["aggregates"]
    shipments = Work(TP(shipment.topic, 0), None, outputs)
    for event in events[half:]:
        if event.payload.TOPIC == SHIPMENT_TOPIC:
            shipment.handle(shipments, harness.message(shipment.topic, kafka_key(event).encode(), encode_event(event)))
    work = Work(TP(aggregate.topic, 0), None, outputs)
    for message in harness.forwarded([shipments]):
        for item in aggregate.unpack(message):
            aggregate.handle(work, item)
    aggregate.tick(work, 0, events[-1].occurred_at.timestamp() + 6 * 3600.0)
    staged = {name for name, _ in work.staged}
    assert staged == set(aggregates), "the uncommitted batch changed every aggregate"
    assert {name: table_bytes(harness, name) for name in aggregates} == committed


def ferry_closure_events() -> list:
    """Two days of shipments and harvests with a 16-hour ferry closure on the first: route and supply alerts."""
    reference = load_reference()
    closure = {"name": "closure", "kind": "ferry_closure", "checkpoint": "bakauheni_port", "at": "+1h", "hours": 16}
    scenarios = parse_scenarios({"scenarios": [closure]}, START, reference)
    simulation = Simulation(reference, seed=42, start=START, scenarios=scenarios)
    return [
        item
        for item in simulation.run(until=START + timedelta(days=2))
        if not isinstance(item, GroundTruth) and item.payload.TOPIC != "pangan.price.v1"
    ]


def first_opened(harness: Harness) -> dict[str, datetime]:
    """Subject -> event time of its first AlertOpened."""
    opened: dict[str, datetime] = {}
    for _, kind, payload in alert_values(harness):
        if kind == "AlertOpened":
            opened.setdefault(payload["subject"], datetime.fromisoformat(payload["opened_at"]))
    return opened


def test_aggregates_judged_once_per_key_and_batch_open_the_same_alerts_at_most_the_judgement_interval_later():
    """Batched, a key is judged at the end of the batch and at least every PROCESSOR_TICK_EVENT_MINUTES of
    its records' event time, not after each record: a two-hour batch of records must open what judging
    every record opens, within that interval of it."""
    judge_every = timedelta(minutes=Settings().processor_tick_event_minutes)
    window = timedelta(hours=2)
    events = ferry_closure_events()
    per_record, batched = Harness.create(), Harness.create()
    windows: dict[int, list] = {}
    for event in events:
        windows.setdefault((event.occurred_at - START) // window, []).append(event)
    for index in sorted(windows):
        tick_at = (START + (index + 1) * window).timestamp()
        per_record.feed(windows[index])  # one record per batch: each judged as it comes
        per_record.run("aggregates", [], tick_at=tick_at)
        units = []
        for stage in ("shipment", "harvest"):
            topic = batched.processor.stages[stage].topic
            messages = [batched.message(topic, kafka_key(e).encode(), encode_event(e)) for e in windows[index]
                        if batched.processor.topics.contract_topics_reverse[e.payload.TOPIC] == topic]  # fmt: skip
            if messages:
                units.append(batched.run(stage, messages, forward=False))
        batched.run("aggregates", batched.forwarded(units), tick_at=tick_at)  # hours of records, one batch
    expected, opened = first_opened(per_record), first_opened(batched)
    assert {"route_disruption:ferry_crossing", "supply_gap:beras:pibc"} <= expected.keys()
    assert opened.keys() == expected.keys()
    late = {subject: opened[subject] - expected[subject] for subject in expected}
    assert all(timedelta(0) <= delay <= judge_every for delay in late.values()), late
