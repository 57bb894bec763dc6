"""Repartition bundles (services/processor/bundles.py): what a batch forwards, one record per partition."""

from __future__ import annotations

import base64
from collections import Counter

import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from services.processor.bundles import (
    BUNDLE_MAX_BYTES,
    EVENT_TIME_HEADER,
    Bundler,
    Forwarded,
    unpack,
)
from services.processor.committer import partition_for
from services.processor.work import PROCESSING_ERROR, Work
from tests.unit.processor.harness import FakeMessage, Harness

PARTITIONS = {"aggregates": 6, "by-commodity": 3}

keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
forwards = st.lists(
    st.tuples(
        st.sampled_from(sorted(PARTITIONS)),
        st.lists(keys, min_size=1, max_size=4, unique=True),
        st.dictionaries(st.sampled_from("abc"), st.integers(-(2**63), 2**63 - 1)),
        st.floats(0, 2e9),
    ),
    max_size=40,
)


def received(bundler: Bundler) -> list[Forwarded]:
    """The items of the bundler's records, as the reading stage takes them apart (offset order)."""
    messages = [FakeMessage(r.topic, r.partition, offset, r.key, r.value) for offset, r in enumerate(bundler.records())]
    return [item for message in messages for item in unpack(message, lambda value: value)]


@given(forwards)
def test_every_item_arrives_once_on_its_keys_partition_in_the_order_forwarded(sent):
    bundler = Bundler(PARTITIONS)
    for topic, item_keys, value, at in sent:
        bundler.add(topic, item_keys, orjson.dumps(value), at)
    items = received(bundler)
    assert all(item.partition == partition_for(item.key, PARTITIONS[item.topic]) for item in items)
    expected = [(topic, key, value, at) for topic, item_keys, value, at in sent for key in item_keys]
    assert len(items) == len(expected)
    assert bundler.items == Counter(topic for topic, _, _, _ in expected)  # what the metric counts
    for topic in PARTITIONS:
        for partition in range(PARTITIONS[topic]):
            here = [(t, k, v, a) for t, k, v, a in expected
                    if t == topic and partition_for(k.encode(), PARTITIONS[t]) == partition]  # fmt: skip
            got = [(i.topic, i.subject, i.body, i.at) for i in items if i.topic == topic and i.partition == partition]
            assert got == here


def test_a_value_forwarded_to_several_keys_of_one_partition_is_written_once():
    bundler = Bundler({"aggregates": 1})
    value = orjson.dumps({"kind": "status", "payload": "x" * 500})
    bundler.add("aggregates", ["supply|beras:pibc", "route|bakauheni_port", "harvest|1801:beras"], value, 1.0)
    (record,) = bundler.records()
    assert record.value.count(b"x" * 500) == 1
    assert [item.subject for item in received(bundler)] == ["supply|beras:pibc", "route|bakauheni_port",
                                                            "harvest|1801:beras"]  # fmt: skip


def test_a_batch_larger_than_the_bundle_limit_is_split_and_keeps_its_order():
    bundler = Bundler({"aggregates": 1})
    value = orjson.dumps({"pad": "y" * 10_000})
    for n in range(100):  # about 1 MB: four bundles or more
        bundler.add("aggregates", [f"k{n}"], value, float(n))
    records = bundler.records()
    assert len(records) >= 4
    assert all(len(r.value) <= BUNDLE_MAX_BYTES for r in records)
    assert [item.at for item in received(bundler)] == [float(n) for n in range(100)]


@given(keys, st.integers(1, 64))
def test_an_item_goes_to_the_partition_a_keyed_record_goes_to(key, count):
    """The committer's keyed records, the project's producers (kafka-python) and Kafka's other clients use
    the default partitioner (murmur2): an aggregate key's state stays in the same table partition however
    its records are written."""
    partitions = list(range(count))
    expected = DefaultPartitioner()(key.encode(), partitions, partitions)
    assert partition_for(key.encode(), count) == expected
    assert (kafka_python_murmur2(key.encode()) & 0x7FFFFFFF) % count == expected  # its DefaultPartitioner


def test_a_record_of_the_previous_release_unpacks_to_its_one_item():
    value = {"kind": "status", "event_id": "e1"}
    message = FakeMessage("aggregates", 2, 7, b"route|bakauheni_port", orjson.dumps(value),
                          [(EVENT_TIME_HEADER, b"1700000000.5")])  # fmt: skip
    (item,) = unpack(message, lambda v: v)
    assert (item.subject, item.at, item.body, item.offset, item.error) == (
        "route|bakauheni_port", 1700000000.5, value, 7, None)  # fmt: skip


def test_a_record_that_cannot_be_taken_apart_is_dead_lettered_whole_with_the_reason():
    harness = Harness.create()
    stage = harness.processor.stages["aggregates"]
    for value, reason in ((b'{"bundle": 9, "items": [], "values": []}', "bundle version 9 is not 1"),
                          (b'{"bundle": 1, "items": [], "values": []}', "bundle without items"),
                          (b'{"bundle": 1, "items": [["k", 3, 1.0]], "values": []}', "IndexError"),
                          (b"not json", "JSONDecodeError")):  # fmt: skip
        message = harness.message(stage.topic, None, value)
        (item,) = stage.unpack(message)
        work = Work(TP(stage.topic, 0), message.offset + 1, harness.processor.runner.outputs)
        stage.handle(work, item)
        (dead,) = work.records
        payload = orjson.loads(dead.value)["payload"]
        assert payload["error_type"] == PROCESSING_ERROR and reason in payload["error_message"]
        assert payload["offset"] == message.offset
        assert payload["original_value_b64"] is not None  # the record's bytes, kept


def test_items_of_one_bundle_dead_letter_under_their_own_ids_keys_and_values():
    harness = Harness.create()
    outputs = harness.processor.runner.outputs
    bundler = Bundler(outputs.forward_partitions)
    topic = harness.processor.topics.aggregates
    bundler.add(topic, ["supply|a", "supply|b"], orjson.dumps({"n": 1}), 1.0)
    bundler.add(topic, ["supply|a"], orjson.dumps({"n": 2}), 2.0)
    items = [i for i in received(bundler) if i.subject == "supply|a"]
    work = Work(TP(topic, 0), None, outputs)
    for item in items:
        work.dead_letter(item, PROCESSING_ERROR, ValueError("broken"))
    letters = [orjson.loads(record.value) for record in work.records]
    assert len({letter["event_id"] for letter in letters}) == 2
    payloads = [letter["payload"] for letter in letters]
    assert [orjson.loads(base64.b64decode(p["original_value_b64"])) for p in payloads] == [{"n": 1}, {"n": 2}]
    assert {base64.b64decode(p["original_key_b64"]) for p in payloads} == {b"supply|a"}
