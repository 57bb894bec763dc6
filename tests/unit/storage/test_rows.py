"""Each event type becomes one row of its table, with the same instants, the price in its unit,
the original bytes of a dead letter, and NULL where an event type carries nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from pantau.contracts.models import EVENT_TYPES
from pantau.storage.rows import (
    ALERT_EVENTS,
    DEAD_LETTERS,
    HARVESTS,
    PRICE_OBSERVATIONS,
    SHIPMENT_EVENTS,
    TABLES,
    row_for,
)
from tests.unit.storage.events import T0, alert_lifecycle, dead_letter, harvest, price, shipment_journey

SOURCE = "test:rows"


def as_dict(event) -> tuple[str, dict]:
    table, row = row_for(event)
    assert len(row) == len(table.columns)
    return table.name, dict(zip(table.columns, row, strict=True))


def test_every_event_type_of_the_contract_has_a_table():
    samples = [price(SOURCE), harvest(SOURCE), *shipment_journey(SOURCE), *alert_lifecycle(SOURCE),
               dead_letter(SOURCE)]
    assert {e.event_type for e in samples} == set(EVENT_TYPES)
    assert {row_for(e)[0] for e in samples} == set(TABLES)


def test_price_row_keeps_the_instant_and_the_envelope():
    event = price(SOURCE, at=T0, price_idr=12850)
    table, row = as_dict(event)
    assert table == PRICE_OBSERVATIONS.name
    assert row["occurred_at"] == datetime(2026, 3, 4, 1, 0, tzinfo=UTC)  # 08:00 WIB
    assert row["produced_at"] == event.produced_at
    assert row["event_id"] == UUID(event.event_id)
    assert row["source"] == SOURCE and row["correlation_id"] is None and row["schema_version"] == "1.0"
    assert (row["commodity"], row["market_code"], row["quality_grade"]) == ("beras", "pibc", "medium")
    assert (row["price_idr"], row["unit"]) == (12850.0, "kg")
    assert isinstance(row["price_idr"], float)  # binary COPY writes float8


def test_litre_price_is_stored_as_the_price_per_litre():
    _, row = as_dict(price(SOURCE, commodity="minyak_goreng", unit="litre", price_idr=17500))
    assert (row["price_idr"], row["unit"]) == (17500.0, "litre")


@given(st.integers(min_value=-12 * 60, max_value=14 * 60), st.integers(min_value=0, max_value=10**8))
def test_occurred_at_is_the_same_instant_whatever_the_offset(offset_minutes, seconds):
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    sent = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    _, row = as_dict(price(SOURCE, at=sent))
    assert row["occurred_at"] == moment


def test_harvest_row_has_the_quantity_and_dates():
    event = harvest(SOURCE, quantity_kg=120_000)
    table, row = as_dict(event)
    assert table == HARVESTS.name
    assert row["harvest_id"] == UUID(event.payload.harvest_id)
    assert row["correlation_id"] == UUID(event.payload.harvest_id)
    assert row["quantity_kg"] == 120_000.0
    assert row["harvested_on"] == T0.date()
    assert row["expected_available_until"] == T0.date() + timedelta(days=12)


def test_shipment_rows_carry_what_each_lifecycle_event_says():
    dispatched, first_checkpoint, _, _, arrived = shipment_journey(SOURCE, delay=timedelta(minutes=90))
    table, d = as_dict(dispatched)
    assert table == SHIPMENT_EVENTS.name
    assert d["event_type"] == "ShipmentDispatched"
    assert (d["vehicle_plate"], d["vehicle_kind"], d["vehicle_capacity_kg"]) == ("BE 8123 AB", "fuso", 10_000.0)
    assert d["eta"] == dispatched.payload.eta
    route = json.loads(json.dumps(d["planned_route"].obj))
    assert [c["checkpoint_code"] for c in route] == ["bakauheni_port", "ferry_crossing", "merak_port"]
    assert datetime.fromisoformat(route[0]["planned_at"]) == dispatched.payload.planned_route[0].planned_at
    assert d["checkpoint_code"] is None and d["dispatched_at"] is None

    _, c = as_dict(first_checkpoint)
    assert (c["checkpoint_code"], c["checkpoint_sequence"]) == ("bakauheni_port", 1)
    assert c["planned_at"] == first_checkpoint.payload.planned_at
    assert c["vehicle_plate"] is None and c["planned_route"] is None

    _, a = as_dict(arrived)
    assert a["event_type"] == "ShipmentArrived"
    assert a["dispatched_at"] == dispatched.occurred_at
    assert a["transit_minutes"] == 600 + 90
    assert a["eta"] is None
    assert {d["shipment_id"], c["shipment_id"], a["shipment_id"]} == {UUID(dispatched.payload.shipment_id)}


def test_alert_rows_flatten_place_and_texts_and_keep_the_evidence():
    opened, updated, resolved = alert_lifecycle(SOURCE)
    table, o = as_dict(opened)
    assert table == ALERT_EVENTS.name
    assert (o["event_type"], o["sequence"], o["severity"], o["previous_severity"]) == ("AlertOpened", 1, "alert", None)
    assert (o["place_kind"], o["place_code"], o["place_name"]) == ("market", "pibc", "Pasar Induk Beras Cipinang")
    assert (o["title_en"], o["action_text_id"]) == ("Rice price up", "Periksa stok beras.")
    assert o["evidence"].obj["signals"][0]["value"] == 4.1
    _, r = as_dict(resolved)
    assert (r["sequence"], r["severity"], r["previous_severity"]) == (3, "normal", "crisis")
    assert r["opened_at"] == opened.occurred_at
    assert o["alert_id"] == r["alert_id"] == UUID(opened.payload.alert_id)


def test_dead_letter_row_holds_the_original_bytes():
    not_even_utf8 = b'{"event_id": "x", "price": \xff\xfe}'
    table, row = as_dict(dead_letter(SOURCE, value=not_even_utf8))
    assert table == DEAD_LETTERS.name
    assert row["original_key"] == b"beras:pibc"
    assert row["original_value"] == not_even_utf8
    assert (row["original_topic"], row["original_partition"], row["original_offset"]) == ("pangan.price.v1", 4, 18234)
    assert (row["error_type"], row["consumer"]) == ("schema_violation", "processor")
