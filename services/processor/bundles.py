"""Repartition bundles: what one batch forwards to one partition of a repartition topic, as one record.

A source event becomes one to four repartition items (a price goes to its commodity; a shipment
snapshot to its destination's supply, its checkpoints' routes, its regency's harvests). Written as a
Kafka record each, they cost the worker more than the detection did: producing, fetching, Faust's
message objects and the commit bookkeeping are paid per record. So a batch writes, per target
partition, one record holding all its items:

    {"bundle": 1,
     "items": [[key, value index, event time], ...],   # in the order the stage forwarded them
     "values": [{...}, ...]}                            # each value once (a snapshot serves 2-4 keys)

The partition is the one the item key's own record would have gone to (murmur2, like every producer
of the project), so each key's state stays in its table partition. The reading stage takes the
items apart (`unpack`) and handles them one by one, each at its own event time. Records written by
the previous release (one item, its key as record key, its event time in a header) still unpack.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from services.processor.committer import Record, partition_for

BUNDLE_VERSION = 1
# A bundle stays well below Kafka's default 1 MiB message and request limits.
BUNDLE_MAX_BYTES = 256 * 1024
ITEM_OVERHEAD_BYTES = 32  # brackets, commas, index and event time of an item, roughly


class _Open:
    """A bundle being filled: its items, its distinct values, and its size so far."""

    __slots__ = ("items", "values", "size")

    def __init__(self) -> None:
        self.items: list[list[Any]] = []
        self.values: list[bytes] = []
        self.size = 0

    def encode(self) -> bytes:
        return b"".join(
            (b'{"bundle":%d,"items":' % BUNDLE_VERSION, orjson.dumps(self.items),
             b',"values":[', b",".join(self.values), b"]}")
        )  # fmt: skip


class Bundler:
    """Collects a unit's forwarded items per (topic, partition); `records()` gives the bundles."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions  # repartition topic -> its partition count
        self.open: dict[tuple[str, int], _Open] = {}
        self.sealed: list[Record] = []
        self.items: Counter[str] = Counter()  # per topic

    def add(self, topic: str, keys: Iterable[str], value: bytes, event_time: float) -> None:
        """`value` (a JSON object) for each of `keys`, once per bundle however many keys share it."""
        count = self.partitions[topic]
        added = 0
        index_in: dict[int, int] = {}  # partition -> index of `value` in that partition's bundle
        for key in keys:
            partition = partition_for(key.encode(), count)
            index = index_in.get(partition)
            if index is None:
                bundle = self._bundle(topic, partition, len(value))
                index = index_in[partition] = len(bundle.values)
                bundle.values.append(value)
                bundle.size += len(value)
            else:
                bundle = self.open[(topic, partition)]
            bundle.items.append([key, index, event_time])
            bundle.size += len(key) + ITEM_OVERHEAD_BYTES
            added += 1
        self.items[topic] += added

    def _bundle(self, topic: str, partition: int, adding: int) -> _Open:
        bundle = self.open.get((topic, partition))
        if bundle is not None and bundle.size + adding > BUNDLE_MAX_BYTES:
            self.sealed.append(Record(topic, None, bundle.encode(), partition))
            bundle = None
        if bundle is None:
            bundle = self.open[(topic, partition)] = _Open()
        return bundle

    def records(self) -> list[Record]:
        return self.sealed + [
            Record(topic, None, bundle.encode(), partition) for (topic, partition), bundle in self.open.items()
        ]


class Forwarded:
    """One item of a repartition record, as a stage handles it; also its own dead-letter source
    (the record's topic, partition and offset, the item's key and its JSON value)."""

    __slots__ = ("topic", "partition", "offset", "index", "subject", "at", "body", "timestamp", "error", "_raw")

    def __init__(self, message: Any, index: int, subject: str, at: float, body: Any,
                 raw: Any = None, error: Exception | None = None) -> None:  # fmt: skip
        self.topic: str = message.topic
        self.partition: int = message.partition
        self.offset: int = message.offset
        self.timestamp: float | None = message.timestamp
        self.index = index  # position in its record: offset and index identify the item
        self.subject = subject  # the item's key: what its detector state is kept under
        self.at = at  # event time
        self.body = body  # parsed by the reading stage
        self.error = error  # the record could not be taken apart: the item stands for all of it
        self._raw = raw  # the item's JSON object, or the record's bytes

    @property
    def key(self) -> bytes:
        return self.subject.encode()

    @property
    def value(self) -> bytes | None:
        raw = self._raw
        return raw if raw is None or isinstance(raw, bytes) else orjson.dumps(raw)


EVENT_TIME_HEADER = "pantau-event-time"  # the previous release's one-item records


def event_time_of(message: Any) -> float:
    """The event time in a one-item record's header (seconds); 0.0 when it has none (a bundle)."""
    for name, value in message.headers or ():
        if name == EVENT_TIME_HEADER:
            return float(value)
    return 0.0


def unpack(message: Any, parse: Callable[[Any], Any]) -> list[Forwarded]:
    """A repartition record's items, each value parsed once (`parse` takes the JSON object). A record
    that cannot be taken apart becomes one item carrying the error, for the stage to dead-letter."""
    try:
        record = orjson.loads(message.value)
        if isinstance(record, dict) and "bundle" in record:
            if record["bundle"] != BUNDLE_VERSION:
                raise ValueError(f"repartition bundle version {record['bundle']!r} is not {BUNDLE_VERSION}")
            if not record["items"]:
                raise ValueError("a repartition bundle without items")
            raw_values = record["values"]
            values = [parse(value) for value in raw_values]
            return [
                Forwarded(message, index, key, at, values[value_index], raw_values[value_index])
                for index, (key, value_index, at) in enumerate(record["items"])
            ]
        # written by the previous release: one item, keyed, its event time in a header
        return [Forwarded(message, 0, message.key.decode(), event_time_of(message), parse(record), record)]
    except Exception as exc:
        subject = message.key.decode("utf-8", "replace") if message.key else ""
        return [Forwarded(message, 0, subject, event_time_of(message), None, message.value, exc)]
