"""Property tests: any event the models accept encodes to JSON the schema accepts and decodes back to
the same event; and for any mutation of a valid event, the schema and the decoder agree."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, date, datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pantau.contracts import (
    WIB,
    AlertOpened,
    AlertResolved,
    AlertUpdated,
    EventDeadLettered,
    EventDecodeError,
    Evidence,
    HarvestReported,
    LocalizedText,
    Place,
    PlannedCheckpoint,
    PriceObserved,
    ShipmentArrived,
    ShipmentCheckpointPassed,
    ShipmentDispatched,
    Signal,
    Vehicle,
    decode_event,
    encode_event,
    new_event,
)

from .conftest import example_files

uuids = st.uuids().map(str)
codes = st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True)
regencies = st.from_regex(r"[1-9][0-9]\.[0-9]{2}", fullmatch=True)
provinces = st.from_regex(r"[1-9][0-9]", fullmatch=True)
kilograms = st.floats(min_value=0, max_value=100_000_000, exclude_min=True, allow_nan=False)
prices = st.floats(min_value=0, max_value=100_000_000, exclude_min=True, allow_nan=False)
finite = st.floats(allow_nan=False, allow_infinity=False)
offsets = st.sampled_from([WIB, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))])
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=offsets)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
texts = st.text(min_size=1, max_size=60)
severities = st.sampled_from(["normal", "watch", "alert", "crisis"])
raised = st.sampled_from(["watch", "alert", "crisis"])
sources = st.from_regex(r"[a-z][a-z0-9_-]{0,12}(\.[a-z0-9_-]{1,8})?(:[A-Za-z0-9_.-]{1,16})?", fullmatch=True)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | st.text(max_size=20)
b64 = st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode("ascii"))

harvests = st.builds(
    HarvestReported,
    harvest_id=uuids,
    regency_code=regencies,
    commodity=codes,
    quality_grade=st.none() | codes,
    quantity_kg=kilograms,
    harvested_on=days,
    expected_available_from=days,
    expected_available_until=days,
)
vehicles = st.builds(
    Vehicle,
    plate=st.from_regex(r"[A-Z]{1,2} [0-9]{1,4}( [A-Z]{1,3})?", fullmatch=True),
    kind=st.sampled_from(["pickup", "cde", "cdd", "fuso", "tronton", "wingbox", "trailer", "reefer"]),
    capacity_kg=st.floats(min_value=0, max_value=60_000, exclude_min=True),
)
stops = st.builds(PlannedCheckpoint, checkpoint_code=codes, sequence=st.integers(1, 50), planned_at=instants)
dispatches = st.builds(
    ShipmentDispatched,
    shipment_id=uuids,
    commodity=codes,
    quantity_kg=kilograms,
    origin_regency_code=regencies,
    destination_code=codes,
    vehicle=vehicles,
    harvest_id=st.none() | uuids,
    planned_route=st.lists(stops, max_size=5),
    eta=instants,
)
checkpoints = st.builds(
    ShipmentCheckpointPassed,
    shipment_id=uuids,
    checkpoint_code=codes,
    sequence=st.integers(1, 50),
    commodity=codes,
    quantity_kg=kilograms,
    destination_code=codes,
    origin_regency_code=regencies,
    planned_at=instants,
    eta=instants,
)
arrivals = st.builds(
    ShipmentArrived,
    shipment_id=uuids,
    destination_code=codes,
    commodity=codes,
    quantity_kg=kilograms,
    origin_regency_code=regencies,
    dispatched_at=instants,
    transit_minutes=st.floats(min_value=0, max_value=100_000),
)


@st.composite
def price_observations(draw):
    unit = draw(st.sampled_from(["kg", "litre"]))
    price = draw(prices)
    return PriceObserved(
        commodity=draw(codes),
        quality_grade=draw(codes),
        market_code=draw(codes),
        province_code=draw(provinces),
        price_level=draw(st.sampled_from(["producer", "wholesale", "retail"])),
        unit=unit,
        price_idr_per_kg=price if unit == "kg" else None,
        price_idr_per_litre=price if unit == "litre" else None,
    )


signals = st.builds(
    Signal,
    name=codes,
    value=finite,
    threshold=st.none() | finite,
    baseline=st.none() | finite,
    window=st.none() | st.text(max_size=32),
    severity=severities,
    note=st.none() | st.text(min_size=1, max_size=100),
)
alert_fields = dict(
    alert_id=uuids,
    alert_type=st.sampled_from(
        ["price_spike", "price_disparity", "supply_gap", "route_disruption", "harvest_unshipped"]
    ),
    subject=st.from_regex(r"[a-z_]{1,20}:[A-Za-z0-9_.:-]{1,40}", fullmatch=True),
    commodity=st.none() | codes,
    place=st.builds(
        Place,
        kind=st.sampled_from(["market", "province", "destination", "checkpoint", "regency"]),
        code=st.from_regex(r"[a-z0-9][a-z0-9_.]{0,20}", fullmatch=True),
        name=st.text(min_size=1, max_size=80),
    ),
    affected_volume_kg=st.none() | st.floats(min_value=0, max_value=1e9),
    evidence=st.builds(
        Evidence,
        signals=st.lists(signals, max_size=4),
        details=st.dictionaries(st.text(max_size=12), json_scalars, max_size=4),
    ),
    title=st.builds(LocalizedText, id=texts, en=texts),
    action_text=st.builds(LocalizedText, id=texts, en=texts),
    opened_at=instants,
)
alerts = (
    st.builds(AlertOpened, sequence=st.just(1), severity=raised, previous_severity=st.none(), **alert_fields)
    | st.builds(
        AlertUpdated, sequence=st.integers(2, 10_000), severity=raised, previous_severity=severities, **alert_fields
    )
    | st.builds(
        AlertResolved,
        sequence=st.integers(2, 10_000),
        severity=st.just("normal"),
        previous_severity=severities,
        **alert_fields,
    )
)
dead_letters = st.builds(
    EventDeadLettered,
    original_topic=st.from_regex(r"[A-Za-z0-9._-]{1,60}", fullmatch=True),
    partition=st.integers(0, 10_000),
    offset=st.integers(0, 2**62),
    original_key_b64=st.none() | b64,
    original_value_b64=st.none() | b64,
    original_event_id=st.none() | uuids,
    error_type=codes,
    error_message=st.text(min_size=1, max_size=200),
    consumer=st.text(min_size=1, max_size=40),
    failed_at=instants,
)
payloads = harvests | dispatches | checkpoints | arrivals | price_observations() | alerts | dead_letters


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads, occurred_at=instants, source=sources, correlation_id=st.none() | uuids)
def test_any_model_built_event_encodes_to_schema_valid_json_and_round_trips(
    payload, occurred_at, source, correlation_id, validator
):
    event = new_event(payload, occurred_at=occurred_at, source=source, correlation_id=correlation_id)
    encoded = encode_event(event)
    assert validator.errors(orjson.loads(encoded)) == []
    assert decode_event(encoded) == event


VALID_EVENTS = [orjson.loads(p.read_bytes()) for p in example_files("valid")]
REPLACEMENTS = [None, -1, 0, 1, 1.5, "", "x", "2026-03-04", True, [], {}, "2026-03-04T08:00:00Z"]


def _paths(node, prefix=()):
    """Every (path, value) in a JSON document, objects and lists included."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def _mutations(event):
    """Every single-step mutation of a valid event: drop a member, replace it, or add an unknown field."""
    for path, value in _paths(event):
        if not path:
            continue
        for replacement in ("delete", *REPLACEMENTS):
            mutated = copy.deepcopy(event)
            parent = mutated
            for part in path[:-1]:
                parent = parent[part]
            if replacement == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
            yield mutated, (path, replacement)
        if isinstance(value, dict):
            mutated = copy.deepcopy(event)
            target = mutated
            for part in path:
                target = target[part]
            target["unexpected_field"] = 1
            yield mutated, (path, "unexpected_field")


def test_schema_and_decoder_give_the_same_verdict_on_every_single_mutation(validator):
    disagreements, verdicts = [], set()
    for example in VALID_EVENTS:
        for mutated, mutation in _mutations(example):
            schema_accepts = validator.is_valid(mutated)
            try:
                decode_event(orjson.dumps(mutated))
                decoder_accepts = True
            except EventDecodeError:
                decoder_accepts = False
            verdicts.add(schema_accepts)
            if schema_accepts != decoder_accepts:
                disagreements.append((example["event_type"], mutation, schema_accepts, decoder_accepts))
    assert verdicts == {True, False}  # the mutations include both harmless and breaking ones
    assert disagreements == []
