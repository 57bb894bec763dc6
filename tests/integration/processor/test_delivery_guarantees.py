"""Exactly-once and at-least-once with real workers on the real broker: a worker is SIGKILLed in the
middle of a stream and another takes over; a read_committed consumer then sees every output once
(exactly_once) or at least once with the same ids (at_least_once), and the alerts equal what the
detectors produce on the same input without interruption."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest

from pantau.contracts import ALERT_TOPIC, DEADLETTER_TOPIC, PRICE_TOPIC, encode_event, kafka_key
from pantau.detect.conditions import PlaceKind, Rejected
from pantau.detect.lifecycle import step_lifecycle
from pantau.detect.price import PriceObservation, step_price
from pantau.reference import load_reference
from services.processor.stages import Detection
from tests.integration.processor.events import price

pytestmark = pytest.mark.kafka

COMMODITIES = {"beras": 13_000, "cabai_merah": 45_000, "bawang_merah": 38_000, "telur_ayam": 28_000,
               "daging_ayam": 36_000, "gula_pasir": 17_500}  # fmt: skip
MARKETS = ("prov_31", "prov_18")
DAYS = 400  # 6 commodities x 2 provinces x 400 days = 4800 observations
INVALID_EVERY = 7


def _stream():
    """Daily province prices with a few sustained jumps (alerts) and a schema-invalid record every
    INVALID_EVERY records; returns (records to send, valid events, invalid count)."""
    records, valid, invalid = [], [], 0
    for day in range(DAYS):
        for c_index, (commodity, base) in enumerate(COMMODITIES.items()):
            for m_index, market in enumerate(MARKETS):
                wiggle = 1 + 0.004 * ((day * 7 + c_index * 3 + m_index) % 5 - 2)
                jump = 1.35 if (day + 60 * c_index) % 180 in range(100, 115) and market == "prov_31" else 1.0
                event = price(commodity, market, day, round(base * wiggle * jump), level="retail")
                if len(records) % INVALID_EVERY == INVALID_EVERY - 1:
                    broken = orjson.loads(encode_event(event))
                    broken["payload"]["price_idr_per_kg"] = -5  # the contract refuses it
                    records.append((PRICE_TOPIC, kafka_key(event), orjson.dumps(broken)))
                    invalid += 1
                else:
                    records.append((PRICE_TOPIC, kafka_key(event), encode_event(event)))
                    valid.append(event)
    return records, valid, invalid


def _expected_price_alerts(events) -> set[tuple[str, int]]:
    """(alert_id, sequence) of every price_spike transition the detectors produce on `events` in order."""
    detection = Detection.from_reference(load_reference(), 72)
    series, alerts, expected = {}, {}, set()
    for event in events:
        p = event.payload
        key = kafka_key(event)
        obs = PriceObservation(p.commodity, p.market_code, p.price_idr, event.occurred_at, p.price_level,
                               p.quality_grade, p.province_code, PlaceKind.PROVINCE, event.event_id)  # fmt: skip
        series[key], result = step_price(series.get(key), obs, detection.price)
        assert not isinstance(result, Rejected), result
        for condition in result:
            alerts[key], transitions = step_lifecycle(alerts.get(key), condition, detection.lifecycle)
            expected.update((t.alert_id, t.sequence) for t in transitions)
    return expected


def _kill_mid_stream_and_take_over(env, guarantee: str):
    records, valid, invalid = _stream()
    first = env.worker("first", PROCESSING_GUARANTEE=guarantee).start()
    first.wait_assigned()
    env.produce_raw(records)
    deadline = time.monotonic() + 120
    while first.metric("pantau_events_consumed_total", topic=PRICE_TOPIC) < len(records) // 4:
        assert time.monotonic() < deadline, f"the first worker made no progress; log:\n{first.log_tail()}"
        time.sleep(0.05)
    first.kill()
    consumed_before_kill = first.popen.returncode, len(records)
    second = env.worker("second", PROCESSING_GUARANTEE=guarantee).start()
    second.wait_assigned()
    forwarded = env.read_forwarded(
        "price-by-commodity",
        until=lambda items: len({item["event_id"] for item in items}) >= len(valid),
        timeout_s=180,
        settle_s=3,
    )
    return records, valid, invalid, forwarded, consumed_before_kill


def test_a_worker_killed_mid_stream_loses_nothing_and_duplicates_nothing_under_exactly_once(processor_env):
    records, valid, invalid, forwarded, _ = _kill_mid_stream_and_take_over(processor_env, "exactly_once")

    # every valid observation reached the disparity stage (its repartition topic is written outside
    # the transactions, so a record forwarded by the killed worker may come twice: the stage's
    # detector ignores the repeat)
    assert {item["event_id"] for item in forwarded} == {e.event_id for e in valid}

    # every invalid record dead-lettered exactly once
    dead = processor_env.read(DEADLETTER_TOPIC, until=lambda ev: len(ev) >= invalid, settle_s=2)
    offsets = Counter((d.payload.partition, d.payload.offset) for d in dead)
    assert len(offsets) == invalid and max(offsets.values()) == 1
    assert {d.payload.error_type for d in dead} == {"schema_violation"}

    # the price alerts are exactly those of an uninterrupted run, each transition once
    expected = _expected_price_alerts(valid)
    assert expected, "the test stream should raise price alerts"
    alerts = processor_env.read(
        ALERT_TOPIC,
        until=lambda ev: len({(a.payload.alert_id, a.payload.sequence) for a in ev} & expected) >= len(expected),
        settle_s=3,
    )
    spikes = [(a.payload.alert_id, a.payload.sequence) for a in alerts if a.payload.alert_type == "price_spike"]
    assert Counter(spikes) == Counter(expected)
    every = Counter((a.payload.alert_id, a.payload.sequence) for a in alerts)
    assert max(every.values()) == 1, "no alert transition may appear twice"
    sequences: dict[str, list[int]] = {}
    for alert in alerts:
        sequences.setdefault(alert.payload.alert_id, []).append(alert.payload.sequence)
    assert all(sorted(s) == list(range(1, len(s) + 1)) for s in sequences.values())


def test_at_least_once_repeats_outputs_only_with_the_same_ids(processor_env):
    records, valid, invalid, forwarded, _ = _kill_mid_stream_and_take_over(processor_env, "at_least_once")

    assert {item["event_id"] for item in forwarded} == {e.event_id for e in valid}
    expected = _expected_price_alerts(valid)
    alerts = processor_env.read(
        ALERT_TOPIC,
        until=lambda ev: len({(a.payload.alert_id, a.payload.sequence) for a in ev} & expected) >= len(expected),
        settle_s=3,
    )
    spikes = {(a.payload.alert_id, a.payload.sequence) for a in alerts if a.payload.alert_type == "price_spike"}
    assert spikes == expected
    # a repeated alert event is the same event: same event id, same transition
    by_event_id: dict[str, set] = {}
    for alert in alerts:
        by_event_id.setdefault(alert.event_id, set()).add((alert.payload.alert_id, alert.payload.sequence))
    assert all(len(transitions) == 1 for transitions in by_event_id.values())
    # every invalid record dead-lettered, a repeat (records the killed worker handled again) under its
    # first id; counted by source position: repeats come in first, so a raw count would stop early
    dead = processor_env.read(
        DEADLETTER_TOPIC, until=lambda ev: len({(d.payload.partition, d.payload.offset) for d in ev}) >= invalid,
        settle_s=2,
    )  # fmt: skip
    ids_by_position: dict[tuple[int, int], set[str]] = {}
    for d in dead:
        ids_by_position.setdefault((d.payload.partition, d.payload.offset), set()).add(d.event_id)
    assert len(ids_by_position) == invalid
    assert all(len(ids) == 1 for ids in ids_by_position.values())
