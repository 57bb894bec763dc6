"""Bad input against a real worker: every invalid event is dead-lettered with its reason and original
bytes, the stream goes on, duplicates are processed once, late events within the tolerance still
count for their day and older ones are dead-lettered as too_late."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from pantau.contracts import DEADLETTER_TOPIC, PRICE_TOPIC, encode_event, kafka_key
from pantau.kafka import EventProducer
from tests.integration.processor.events import DAY0, arrived, price, shipment_dispatched

pytestmark = pytest.mark.kafka


def _wait_consumed(env, count: float, timeout_s: float = 60.0) -> None:
    worker = env.workers[0]
    deadline = time.monotonic() + timeout_s
    while worker.metric("pantau_events_consumed_total", topic=PRICE_TOPIC) < count:
        assert time.monotonic() < deadline, f"worker consumed too little; log:\n{worker.log_tail()}"
        time.sleep(0.2)


def _dead_letters_for(env, keys: set[str] | None = None, event_ids: set[str] | None = None, expected: int = 1):
    def wanted(letter) -> bool:
        if event_ids and letter.payload.original_event_id in event_ids:
            return True
        return bool(keys) and base64.b64decode(letter.payload.original_key_b64 or "").decode() in keys

    def mine(dead):
        return [d for d in dead if wanted(d)]

    return mine(env.read(DEADLETTER_TOPIC, until=lambda dead: len(mine(dead)) >= expected, settle_s=1))


def test_invalid_records_are_dead_lettered_with_their_reason_and_original_bytes_and_the_stream_goes_on(
    shared_processor,
):
    env = shared_processor
    before = env.workers[0].metric("pantau_events_consumed_total", topic=PRICE_TOPIC)
    good = price("beras", "prov_31", 0, 13_000, level="retail")
    not_json = b'{"event_id": "not even json'
    missing_unit = orjson.loads(encode_event(price("gula_pasir", "pibc", 0, 17_000)))
    del missing_unit["payload"]["unit"]
    negative = orjson.loads(encode_event(price("gula_pasir", "pasar_minggu", 0, 17_000)))
    negative["payload"]["price_idr_per_kg"] = -17_000
    shipment = arrived(shipment_dispatched("0b7f1c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b", DAY0), DAY0)
    wrong_key = price("gula_pasir", "pasar_tugu", 0, 17_000)
    records = [
        (PRICE_TOPIC, "bad:json", not_json),
        (PRICE_TOPIC, "gula_pasir:pibc", orjson.dumps(missing_unit)),
        (PRICE_TOPIC, "gula_pasir:pasar_minggu", orjson.dumps(negative)),
        (PRICE_TOPIC, "shipment:on_price_topic", encode_event(shipment)),
        (PRICE_TOPIC, "gula_pasir:somewhere_else", encode_event(wrong_key)),
        (PRICE_TOPIC, kafka_key(good), encode_event(good)),
    ]
    env.produce_raw(records)
    _wait_consumed(env, before + len(records))

    keys = {key: i for i, (_, key, _) in enumerate(records[:-1])}
    letters = _dead_letters_for(env, set(keys), expected=5)
    dead = {base64.b64decode(d.payload.original_key_b64).decode(): d for d in letters}
    assert set(dead) == set(keys)
    for key, (_, _, value) in zip(keys, records, strict=False):
        letter = dead[key].payload
        assert base64.b64decode(letter.original_value_b64) == value  # nothing lost
        assert letter.original_topic == PRICE_TOPIC and letter.consumer == env.app_id
    assert dead["bad:json"].payload.error_type == "invalid_json"
    assert dead["gula_pasir:pibc"].payload.error_type == "schema_violation"
    assert "unit" in dead["gula_pasir:pibc"].payload.error_message
    assert "price_idr_per_kg" in dead["gula_pasir:pasar_minggu"].payload.error_message
    assert "ShipmentArrived does not belong on pangan.price.v1" in dead["shipment:on_price_topic"].payload.error_message
    assert "'gula_pasir:pasar_tugu'" in dead["gula_pasir:somewhere_else"].payload.error_message
    # the valid event after them was processed: it reached the disparity stage
    def reached(items) -> bool:
        return any(item["event_id"] == good.event_id for item in items)

    assert reached(env.read_forwarded("price-by-commodity", until=reached))
    assert env.workers[0].metric("pantau_events_deadlettered_total", topic=PRICE_TOPIC, reason="schema") >= 5


def test_a_repartition_record_that_cannot_be_taken_apart_is_dead_lettered_and_the_worker_goes_on(shared_processor):
    """The repartition topics are the processor's own, but a record there may still be unreadable (an
    older or newer release, a hand-written record): dead-lettered whole, and the stage goes on."""
    env = shared_processor
    worker = env.workers[0]
    topic = f"{env.app_id}-price-by-commodity-repartition"
    before = worker.metric("pantau_events_consumed_total", topic=topic)
    records = [("bundle-without-items", b'{"bundle": 1, "items": [], "values": []}'),
               ("bundle-from-the-future", b'{"bundle": 2, "items": [["beras", 0, 1.0]], "values": [{}]}')]  # fmt: skip
    with EventProducer(env.settings, client_id="test-broken-bundle") as producer:
        for key, value in records:
            producer.send(topic, key, value, "raw")
    letters = _dead_letters_for(env, keys={key for key, _ in records}, expected=2)
    dead = {base64.b64decode(d.payload.original_key_b64).decode(): d.payload for d in letters}
    assert "bundle without items" in dead["bundle-without-items"].error_message
    assert "bundle version 2 is not 1" in dead["bundle-from-the-future"].error_message
    for key, value in records:
        assert dead[key].error_type == "processing_error" and dead[key].original_topic == topic
        assert base64.b64decode(dead[key].original_value_b64) == value  # the record's bytes, kept
    assert worker.metric("pantau_events_consumed_total", topic=topic) >= before + 2
    worker.assert_running()
    assert worker.health()["status"] == "ok"


def test_a_price_twenty_times_its_recent_median_is_dead_lettered_as_an_invalid_value(shared_processor):
    env = shared_processor
    history = [price("minyak_goreng", "pasar_jatinegara", day, 15_500) for day in range(10)]
    absurd = price("minyak_goreng", "pasar_jatinegara", 10, 15_500 * 25)
    env.produce([*history, absurd])
    (letter,) = _dead_letters_for(env, event_ids={absurd.event_id})
    assert letter.payload.error_type == "invalid_value"
    assert "20x off the recent median" in letter.payload.error_message
    assert env.workers[0].metric("pantau_events_deadlettered_total", topic=PRICE_TOPIC, reason="invalid_value") >= 1


def test_the_same_event_twice_is_processed_once(shared_processor):
    env = shared_processor
    worker = env.workers[0]
    before = worker.metric("pantau_processor_duplicates_total", topic=PRICE_TOPIC)
    event = price("cabai_rawit", "prov_31", 3, 60_000, level="retail")
    env.produce([event, event])
    deadline = time.monotonic() + 60
    while worker.metric("pantau_processor_duplicates_total", topic=PRICE_TOPIC) < before + 1:
        assert time.monotonic() < deadline, "the duplicate was not recognised"
        time.sleep(0.2)
    forwarded = env.read_forwarded("price-by-commodity",
                                   until=lambda items: any(i["event_id"] == event.event_id for i in items),
                                   settle_s=2)  # fmt: skip
    assert sum(item["event_id"] == event.event_id for item in forwarded) == 1


def test_a_late_event_within_the_tolerance_updates_its_day_and_an_older_one_is_dead_lettered_too_late(
    shared_processor,
):
    env = shared_processor
    worker = env.workers[0]
    late_before = worker.metric("pantau_processor_late_events_total", topic=PRICE_TOPIC)
    consumed_before = worker.metric("pantau_events_consumed_total", topic=PRICE_TOPIC)

    def series(market: str, with_late_day: bool):
        days = [price("beras", market, day, 13_000) for day in range(10)] + [price("beras", market, 20, 13_000)]
        late = [price("beras", market, 18, 11_000)] if with_late_day else []  # two days late: within 72 h
        return [*days, *late, price("beras", market, 25, 13_000), price("beras", market, 26, 13_000)]

    too_late = price("beras", "pasar_kramatjati", 21, 12_900)  # five days behind day 26
    sent = env.produce([*series("pasar_kramatjati", True), *series("pasar_tugu", False), too_late])
    _wait_consumed(env, consumed_before + sent)  # all processed: an alert for pasar_tugu would be out

    (letter,) = _dead_letters_for(env, event_ids={too_late.event_id})
    assert letter.payload.error_type == "too_late"
    assert worker.metric("pantau_processor_late_events_total", topic=PRICE_TOPIC) == late_before + 1
    # day 18's late price is in day 25's and 26's 7-day baseline: against it, 13,000 is an 18 % rise
    alerts = env.read("pangan.alert.v1", until=lambda ev: any(a.payload.subject.endswith("pasar_kramatjati")
                                                               for a in ev), settle_s=2)  # fmt: skip
    subjects = {a.payload.subject for a in alerts}
    assert "price_spike:beras:pasar_kramatjati" in subjects
    assert "price_spike:beras:pasar_tugu" not in subjects  # the same series without the late day
