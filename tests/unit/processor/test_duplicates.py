"""A key remembers the event ids of its lateness tolerance: a duplicate inside it is skipped, one beyond
it is dead-lettered as too late, and the key's state (its changelog record, written every batch it
changes) does not carry the ids of older events."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson

from pantau.contracts import WIB, PriceObserved, encode_event, kafka_key, new_event
from tests.unit.processor.harness import Harness

START = datetime(2026, 2, 2, 9, tzinfo=WIB)
TOLERANCE_HOURS = 72


def daily_prices(days: int) -> list:
    events = []
    for day in range(days):
        payload = PriceObserved(commodity="beras", quality_grade="medium", market_code="pasar_induk_kramat_jati",
                                province_code="31", price_level="wholesale", unit="kg",
                                price_idr_per_kg=12_000.0 + 10 * (day % 5))  # fmt: skip
        events.append(new_event(payload, occurred_at=START + timedelta(days=day), source="test"))
    return events


def feed(harness: Harness, events: list) -> None:
    topic = harness.processor.stages["price"].topic
    for event in events:
        harness.run("price", [harness.message(topic, kafka_key(event).encode(), encode_event(event))])


def test_a_key_remembers_only_the_ids_within_the_tolerance_and_still_skips_their_duplicates():
    harness = Harness.create(processor_late_tolerance_hours=TOLERANCE_HOURS)
    events = daily_prices(40)
    feed(harness, events)
    table = harness.processor.stages["price"].table
    (state,) = table.table.data.data.values()
    newest = events[-1].occurred_at
    kept = {e.event_id for e in events if newest - e.occurred_at <= timedelta(hours=TOLERANCE_HOURS)}
    assert set(state.seen) == kept  # 4 days' ids, not 40
    stored = orjson.loads(state.to_bytes())
    assert {event_id for event_id, _ in stored["seen"]} == kept

    outputs_before = len(harness.outputs)
    feed(harness, [events[-2]])  # a repeat inside the tolerance: skipped, nothing emitted
    assert harness.works[-1].duplicates == {"pangan.price.v1": 1}
    assert len(harness.outputs) == outputs_before

    feed(harness, [events[-10]])  # a repeat beyond it: too late, dead-lettered with the reason
    (letter,) = [orjson.loads(r.value) for r in harness.outputs[outputs_before:]]
    assert letter["payload"]["error_type"] == "too_late"
    assert letter["payload"]["original_event_id"] == events[-10].event_id
