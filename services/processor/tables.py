"""Faust tables holding the processor's state per key, with changelogs.

Each table value is a KeyState: the detector's state (pantau.detect, JSON via to_json/from_json),
the alert lifecycle of the key's subject, and for the tables fed by contract topics the recent
event ids (deduplication) and the key's event-time watermark (lateness).

Writes do not go through Faust's `table[key] = value` (that sends each change through Faust's
producer buffer, outside the processor's transaction): a batch stages its new states, the committer
writes one changelog record per changed key inside the batch's Kafka transaction, and only after the
commit are the states put into the store. Recovery is Faust's: on assignment it reads the changelog
(read_committed under exactly_once) through the codecs below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust
import orjson
from faust.serializers.codecs import Codec

from pantau.detect.lifecycle import AlertState

NO_WATERMARK = float("-inf")


class DetectorState(Protocol):
    def to_json(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class KeyState:
    detector: Any = None  # one of the pantau.detect *State classes, None until the first event
    alert: AlertState | None = None
    seen: dict[str, float] = field(default_factory=dict)  # event_id -> event time, oldest first
    watermark: float = NO_WATERMARK  # newest event time seen for the key

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": 1,
                "detector": self.detector.to_json() if self.detector is not None else None,
                "alert": self.alert.to_json() if self.alert is not None else None,
                "seen": list(self.seen.items()),
                "watermark": None if self.watermark == NO_WATERMARK else self.watermark,
            }
        )


def state_from_bytes(raw: bytes, detector_type: Any) -> KeyState:
    data = orjson.loads(raw)
    if data.get("v") != 1:
        raise ValueError(f"unknown processor state version {data.get('v')!r}; expected 1")
    detector, alert, watermark = data["detector"], data["alert"], data["watermark"]
    return KeyState(
        detector=detector_type.from_json(detector) if detector is not None else None,
        alert=AlertState.from_json(alert) if alert is not None else None,
        seen={event_id: ts for event_id, ts in data["seen"]},
        watermark=NO_WATERMARK if watermark is None else watermark,
    )


class _StateCodec(Codec):
    """Changelog value <-> KeyState (Faust calls it while recovering a table)."""

    def _loads(self, s: bytes) -> KeyState:
        return state_from_bytes(s, self.kwargs["detector_type"])

    def _dumps(self, s: KeyState) -> bytes:
        return s.to_bytes()


class _Utf8Codec(Codec):
    def _loads(self, s: bytes) -> str:
        return s.decode("utf-8")

    def _dumps(self, s: str) -> bytes:
        return s.encode("utf-8")


def _value_type(codec: Codec) -> type:
    """A stand-in model type: Faust picks a table's serializer from its key/value type's
    `_options.serializer` and rebuilds values with `from_data`, which here returns the codec's result."""

    class Options:
        serializer = codec

    class Decoded:
        _options = Options

        @classmethod
        def from_data(cls, data: Any, preferred_type: Any = None) -> Any:
            return data

    return Decoded


class StateTable:
    """A Faust table of KeyState, co-partitioned with the topic that feeds it."""

    def __init__(self, app: faust.App, name: str, partitions: int, detector_type: Any) -> None:
        self.name = name
        self.detector_type = detector_type
        self.table = app.Table(
            name,
            partitions=partitions,
            key_type=_value_type(_Utf8Codec()),
            value_type=_value_type(_StateCodec(detector_type=detector_type)),
        )

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def get(self, key: str) -> KeyState | None:
        return self.table.data.data.get(key)

    def put_committed(self, key: str, state: KeyState, partition: int) -> None:
        """Store a state whose changelog record is committed; `partition` lets Faust's memory store
        drop the key when the partition moves to another worker."""
        store = self.table.data
        store.data[key] = state
        store._key_partition[key] = partition  # faust-streaming 0.15 memory store: key -> partition

    def delete_committed(self, key: str) -> None:
        store = self.table.data
        store.data.pop(key, None)
        store._key_partition.pop(key, None)

    def keys_in_partition(self, partition: int) -> Iterator[str]:
        key_partition: Mapping[str, int] = self.table.data._key_partition
        return (key for key, p in list(key_partition.items()) if p == partition)

    def __len__(self) -> int:
        return len(self.table.data.data)
