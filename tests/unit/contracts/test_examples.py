"""The accept/reject fixtures: JSON Schema and the pydantic decode path give the same verdict."""

from __future__ import annotations

import json

import orjson
import pytest

from pantau.contracts import EVENT_TYPES, EventDecodeError, decode_event, encode_event
from pantau.reference import load_reference

from .conftest import EXAMPLES, SCHEMAS, directory_schema_name, example_files, example_id

VALID = example_files("valid")
INVALID = example_files("invalid")


def test_every_event_type_has_a_schema_and_accept_and_reject_examples():
    titles = {json.loads(p.read_text()).get("title") for p in SCHEMAS.glob("*.v1.json")}
    assert set(EVENT_TYPES) <= titles
    for folder in EXAMPLES.iterdir():
        assert (SCHEMAS / f"{folder.name}.v1.json").is_file(), f"no schema for examples/{folder.name}"
        assert list((folder / "valid").glob("*.json")), f"{folder.name} has no valid example"
        assert list((folder / "invalid").glob("*.json")), f"{folder.name} has no invalid example"
    assert {directory_schema_name(p) for p in VALID} == set(EVENT_TYPES)


@pytest.mark.parametrize("path", VALID, ids=example_id)
def test_valid_example_passes_its_schema_and_decodes(path, validator):
    raw = path.read_bytes()
    event_type = directory_schema_name(path)
    assert validator.errors(json.loads(raw), event_type) == []
    event = decode_event(raw)
    assert event.event_type == event_type


@pytest.mark.parametrize("path", VALID, ids=example_id)
def test_valid_example_survives_encode_and_decode(path, validator):
    event = decode_event(path.read_bytes())
    encoded = encode_event(event)
    assert validator.errors(orjson.loads(encoded)) == []
    assert decode_event(encoded) == event


@pytest.mark.parametrize("path", INVALID, ids=example_id)
def test_invalid_example_is_rejected_by_schema_and_by_decode(path, validator):
    raw = path.read_bytes()
    instance = json.loads(raw)
    schema_errors = validator.errors(instance, directory_schema_name(path))
    own_type_errors = validator.errors(instance)  # what a consumer validating by event_type sees
    with pytest.raises(EventDecodeError) as decoded:
        decode_event(raw)
    assert schema_errors, "the JSON Schema accepted it"
    assert not validator.is_valid(instance)
    assert own_type_errors, "the JSON Schema of its own event_type accepted it"
    assert decoded.value.errors and all(": " in line for line in decoded.value.errors)


@pytest.mark.parametrize("schema_path", sorted(SCHEMAS.glob("*.v1.json")), ids=lambda p: p.stem)
def test_examples_inside_each_schema_are_valid(schema_path, validator):
    schema = json.loads(schema_path.read_text())
    if schema["title"] not in EVENT_TYPES:
        return  # envelope and common definitions have no examples of their own
    assert schema["examples"], f"{schema_path.name} has no examples"
    for example in schema["examples"]:
        assert validator.errors(example, schema["title"]) == []
        assert decode_event(orjson.dumps(example)).event_type == schema["title"]


def test_schema_example_is_the_basic_fixture():
    for path in EXAMPLES.glob("*/valid/basic.json"):
        schema = json.loads((SCHEMAS / f"{path.parent.parent.name}.v1.json").read_text())
        assert json.loads(path.read_text()) in schema["examples"], path


@pytest.mark.parametrize("path", VALID, ids=example_id)
def test_valid_examples_use_codes_from_the_reference_data(path):
    ref = load_reference()
    payload = decode_event(path.read_bytes()).payload
    for field in ("commodity",):
        if getattr(payload, field, None):
            ref.commodity(getattr(payload, field))
    for field in ("regency_code", "origin_regency_code"):
        if hasattr(payload, field):
            ref.regency(getattr(payload, field))
    for field in ("market_code", "destination_code"):
        if hasattr(payload, field):
            ref.market(getattr(payload, field))
    if hasattr(payload, "checkpoint_code"):
        ref.checkpoint(payload.checkpoint_code)
    for stop in getattr(payload, "planned_route", []):
        ref.checkpoint(stop.checkpoint_code)
    if getattr(payload, "quality_grade", None):
        assert payload.quality_grade in ref.commodity(payload.commodity).quality_grades


def test_schema_validator_names_the_field_path(validator):
    event = json.loads((EXAMPLES / "shipment_dispatched" / "valid" / "basic.json").read_text())
    event["payload"]["planned_route"][1]["planned_at"] = "2026-03-04T10:30:00"
    event["payload"]["vehicle"]["kind"] = "bus"
    errors = validator.errors(event)
    assert any(
        e.startswith("payload.planned_route[1].planned_at: '2026-03-04T10:30:00' is not a 'date-time'") for e in errors
    )
    assert "payload.vehicle.kind: 'bus' is not one of" in " ".join(errors)
    assert validator.errors({"event_type": "PriceWatched"}) == [
        "event_type: 'PriceWatched' is not one of " + ", ".join(validator.event_types)
    ]
