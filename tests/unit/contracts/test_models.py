"""Building, keying and decoding events as producers and consumers do."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone
from typing import get_args

import orjson
import pytest
from pydantic import ValidationError

from pantau.contracts import (
    WIB,
    AlertOpened,
    EventDecodeError,
    HarvestReported,
    NaiveDatetimeError,
    Place,
    PriceObserved,
    ShipmentArrived,
    alert_id_for,
    dead_letter_for,
    decode_event,
    encode_event,
    kafka_key,
    new_event,
    stable_event_id,
    to_utc,
    to_wib,
    topic_for,
)
from pantau.contracts.models import AlertTypeName, PlaceKindName, SeverityLabel
from pantau.detect.conditions import AlertType, PlaceKind, Severity

from .conftest import EXAMPLES, SCHEMAS

SHIPMENT_ID = "9b2d4e61-0c3a-4f7e-8d15-6a7b8c9d0e1f"


def rice_price(**changes) -> PriceObserved:
    fields = dict(commodity="beras", quality_grade="medium", market_code="pibc", province_code="31",
                  price_level="wholesale", unit="kg", price_idr_per_kg=12850)  # fmt: skip
    return PriceObserved(**{**fields, **changes})


def test_new_event_fills_the_envelope_and_carries_wib():
    event = new_event(rice_price(), occurred_at=datetime(2026, 3, 4, 1, 0, tzinfo=UTC), source="simulator")
    wire = orjson.loads(encode_event(event))
    assert wire["event_type"] == "PriceObserved"
    assert wire["schema_version"] == "1.0"
    assert wire["occurred_at"] == "2026-03-04T08:00:00+07:00"  # same instant, in WIB
    assert wire["produced_at"].endswith("+07:00")
    assert wire["correlation_id"] is None
    assert (
        len(wire["event_id"]) == 36
        and event.event_id
        != new_event(rice_price(), occurred_at=datetime(2026, 3, 4, 1, 0, tzinfo=UTC), source="simulator").event_id
    )


def test_new_event_refuses_a_naive_timestamp_with_a_clear_message():
    with pytest.raises(NaiveDatetimeError, match=r"occurred_at is a naive datetime .* tzinfo=WIB"):
        new_event(rice_price(), occurred_at=datetime(2026, 3, 4, 8, 0), source="simulator")


def test_payload_refuses_a_naive_timestamp():
    with pytest.raises(ValidationError, match="dispatched_at\n.*naive datetime"):
        ShipmentArrived(shipment_id=SHIPMENT_ID, destination_code="pibc", commodity="beras", quantity_kg=8000,
                        origin_regency_code="18.04", dispatched_at=datetime(2026, 3, 4, 6, 0),
                        transit_minutes=600)  # fmt: skip


def test_correlation_id_defaults_to_the_shipment_or_harvest_and_can_be_set():
    arrived = ShipmentArrived(shipment_id=SHIPMENT_ID, destination_code="pibc", commodity="beras", quantity_kg=8000,
                              origin_regency_code="18.04", dispatched_at=datetime(2026, 3, 4, 6, tzinfo=WIB),
                              transit_minutes=600)  # fmt: skip
    at = datetime(2026, 3, 4, 16, tzinfo=WIB)
    assert new_event(arrived, occurred_at=at, source="simulator").correlation_id == SHIPMENT_ID
    assert new_event(arrived, occurred_at=at, source="simulator", correlation_id=None).correlation_id is None


def test_price_needs_exactly_the_price_of_its_unit():
    with pytest.raises(ValidationError, match="unit litre needs price_idr_per_litre and no price_idr_per_kg"):
        rice_price(unit="litre")
    with pytest.raises(ValidationError, match="unit kg needs price_idr_per_kg and no price_idr_per_litre"):
        rice_price(price_idr_per_litre=15000)
    oil = rice_price(commodity="minyak_goreng", unit="litre", price_idr_per_kg=None, price_idr_per_litre=17250)
    assert oil.price_idr == 17250


def test_price_refuses_a_number_given_as_text():
    with pytest.raises(ValidationError, match="price_idr_per_kg"):
        rice_price(price_idr_per_kg="12850")


@pytest.mark.parametrize(
    ("path", "topic", "key"),
    [("harvest_reported", "pangan.harvest.v1", "18.04:beras"),
     ("shipment_dispatched", "pangan.shipment.v1", SHIPMENT_ID),
     ("price_observed", "pangan.price.v1", "beras:pibc"),
     ("alert_opened", "pangan.alert.v1", "price_spike:beras:pibc"),
     ("event_dead_lettered", "pangan.deadletter.v1", "pangan.price.v1")],
)  # fmt: skip
def test_kafka_key_and_topic_follow_the_contract(path, topic, key):
    event = decode_event((EXAMPLES / path / "valid" / "basic.json").read_bytes())
    assert kafka_key(event) == key
    assert topic_for(event) == topic


def test_alert_id_is_the_same_for_the_same_subject_and_instant_in_any_timezone():
    wib = alert_id_for("price_spike:beras:pibc", datetime(2026, 3, 4, 8, tzinfo=WIB))
    utc = alert_id_for("price_spike:beras:pibc", datetime(2026, 3, 4, 1, tzinfo=UTC))
    assert wib == utc == "c835f754-ceb5-596b-a46c-f3a0a036927f"  # the id in the AlertOpened example
    assert alert_id_for("price_spike:beras:pikj", datetime(2026, 3, 4, 8, tzinfo=WIB)) != wib
    assert alert_id_for("price_spike:beras:pibc", datetime(2026, 3, 5, 8, tzinfo=WIB)) != wib


def test_stable_event_id_lets_a_reimport_produce_the_same_id():
    first = stable_event_id("importer.pihps", "beras", "prov_18", date(2026, 2, 12))
    assert first == stable_event_id("importer.pihps", "beras", "prov_18", date(2026, 2, 12))
    assert first != stable_event_id("importer.pihps", "beras", "prov_31", date(2026, 2, 12))
    with pytest.raises(NaiveDatetimeError):
        stable_event_id("x", datetime(2026, 1, 1))


def test_decode_names_the_field_and_the_problem():
    event = orjson.loads((EXAMPLES / "price_observed" / "valid" / "basic.json").read_bytes())
    event["payload"]["price_idr_per_kg"] = -5
    with pytest.raises(EventDecodeError) as raised:
        decode_event(orjson.dumps(event))
    assert raised.value.error_type == "schema_violation"
    assert raised.value.event_id == event["event_id"]
    assert raised.value.errors == ["payload.price_idr_per_kg: Input should be greater than 0 (got -5)"]


@pytest.mark.parametrize(
    ("raw", "error_type"),
    [(b"{not json", "invalid_json"), (b'{"event_type": "PriceWatched"}', "unknown_event_type"),
     (b'{"event_id": "x"}', "unknown_event_type"), (b"[1, 2]", "schema_violation"), (b"", "invalid_json")],
)  # fmt: skip
def test_decode_classifies_what_is_wrong(raw, error_type):
    with pytest.raises(EventDecodeError) as raised:
        decode_event(raw)
    assert raised.value.error_type == error_type


def test_naive_timestamp_on_the_wire_is_explained():
    event = orjson.loads((EXAMPLES / "price_observed" / "valid" / "basic.json").read_bytes())
    event["occurred_at"] = "2026-03-04T08:00:00"
    with pytest.raises(EventDecodeError, match=r"occurred_at: '2026-03-04T08:00:00' is not an RFC 3339 timestamp "
                                               r"with an offset.*naive timestamps are refused"):  # fmt: skip
        decode_event(orjson.dumps(event))


@pytest.mark.parametrize("text", ["2026-03-04 08:00:00+07:00", "2026-03-04t08:00:00z", "2026-03-04T08:00+07:00",
                                  "2026-03-04T08:00:00.1234567Z", "2026-03-04T08:00:00+0700"])  # fmt: skip
def test_timestamp_forms_outside_rfc3339_profile_are_refused_by_both_paths(text, validator):
    event = orjson.loads((EXAMPLES / "price_observed" / "valid" / "basic.json").read_bytes())
    event["occurred_at"] = text
    assert validator.errors(event)
    with pytest.raises(EventDecodeError):
        decode_event(orjson.dumps(event))


def test_dead_letter_keeps_the_original_bytes_and_the_reason():
    raw = b'{"event_id": "1c3e5a7b-9d0f-4b2d-8e4f-6a8c0e2a4c6e", "event_type": "PriceObserved"}'
    try:
        decode_event(raw)
    except EventDecodeError as error:
        failed_at = datetime(2026, 3, 4, 8, tzinfo=WIB)
        letter = dead_letter_for(topic="pangan.price.v1", partition=2, offset=41, key=b"beras:pibc", value=raw,
                                 error=error, consumer="processor", failed_at=failed_at)  # fmt: skip
    event = new_event(letter, occurred_at=letter.failed_at, source="processor")
    decoded = decode_event(encode_event(event))
    assert base64.b64decode(decoded.payload.original_value_b64) == raw
    assert base64.b64decode(decoded.payload.original_key_b64) == b"beras:pibc"
    assert decoded.payload.original_event_id == "1c3e5a7b-9d0f-4b2d-8e4f-6a8c0e2a4c6e"
    assert decoded.payload.error_type == "schema_violation"
    assert "payload: Field required" in decoded.payload.error_message
    assert kafka_key(decoded) == "pangan.price.v1"


def test_dead_letter_of_a_processing_error_names_the_exception():
    letter = dead_letter_for(topic="pangan.price.v1", partition=0, offset=0, key=None, value=None,
                             error=ZeroDivisionError("float division by zero"), consumer="processor",
                             failed_at=datetime(2026, 3, 4, 8, tzinfo=WIB))  # fmt: skip
    assert letter.error_type == "processing_error"
    assert letter.error_message == "ZeroDivisionError: float division by zero"
    assert letter.original_key_b64 is None and letter.original_value_b64 is None


def test_alert_opened_must_start_the_lifecycle():
    example = decode_event((EXAMPLES / "alert_opened" / "valid" / "basic.json").read_bytes()).payload
    with pytest.raises(ValidationError, match="sequence"):
        AlertOpened(**{**example.model_dump(), "sequence": 2})
    with pytest.raises(ValidationError, match="severity"):
        AlertOpened(**{**example.model_dump(), "severity": "normal"})


def test_model_enums_match_the_detectors_and_the_schema():
    common = orjson.loads((SCHEMAS / "common.v1.json").read_bytes())["$defs"]
    assert list(get_args(SeverityLabel)) == [s.label for s in Severity] == common["severity"]["enum"]
    assert list(get_args(AlertTypeName)) == [a.value for a in AlertType] == common["alert_type"]["enum"]
    assert (
        list(get_args(PlaceKindName)) == [p.value for p in PlaceKind] == common["place"]["properties"]["kind"]["enum"]
    )
    Place(kind=PlaceKind.CHECKPOINT.value, code="merak_port", name="Pelabuhan Merak")


def test_storage_is_utc_and_display_is_wib():
    instant = datetime(2026, 3, 4, 8, tzinfo=WIB)
    assert to_utc(instant) == instant and to_utc(instant).utcoffset() == timedelta(0)
    assert to_wib(datetime(2026, 3, 4, 1, tzinfo=UTC)).isoformat() == "2026-03-04T08:00:00+07:00"
    assert to_wib(datetime(2026, 3, 4, 1, tzinfo=timezone(timedelta(hours=-5)))).hour == 13
    with pytest.raises(NaiveDatetimeError):
        to_utc(datetime(2026, 3, 4, 8))


def test_harvest_accepts_dates_and_date_text_but_not_datetimes():
    fields = dict(harvest_id="3f6c1e0a-5b7d-4c2e-9a41-8d2f0b6e7c13", regency_code="18.04", commodity="beras",
                  quantity_kg=120000, expected_available_from="2026-03-04",
                  expected_available_until=date(2026, 3, 14))  # fmt: skip
    assert HarvestReported(**fields, harvested_on=date(2026, 3, 2)).harvested_on == date(2026, 3, 2)
    with pytest.raises(ValidationError, match="calendar date"):
        HarvestReported(**fields, harvested_on=datetime(2026, 3, 2, tzinfo=WIB))


def test_models_use_the_same_patterns_as_the_schemas():
    from pantau.contracts.models import CODE_PATTERN, DATE_PATTERN, TIMESTAMP_PATTERN, UUID_PATTERN

    common = orjson.loads((SCHEMAS / "common.v1.json").read_bytes())["$defs"]
    assert common["timestamp"]["pattern"] == TIMESTAMP_PATTERN
    assert common["date"]["pattern"] == DATE_PATTERN
    assert common["uuid"]["pattern"] == UUID_PATTERN
    assert common["commodity"]["pattern"] == CODE_PATTERN
