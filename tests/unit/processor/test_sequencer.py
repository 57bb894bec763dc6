"""The sequencer re-reads a partition whose records stopped coming: a delivery dropped with nothing
after it shows no hole among the records, so only the log end offset can tell (Sequencer.rescue)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from faust.types import TP

from services.processor import sequencer as sequencer_module
from services.processor.sequencer import HOLE_RETRIES, STALL_S, Sequencer

PRICES = TP("pangan.price.v1", 3)
OTHER = TP("pangan.price.v1", 4)


@dataclass
class FakeConsumer:
    assigned: set[TP]
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    flow_active: bool = True

    def assignment(self) -> set[TP]:
        return self.assigned

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


@dataclass
class Delivered:
    tp: TP
    offset: int


@dataclass
class FakeApp:
    consumer: FakeConsumer
    rebalancing: bool = False


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sequencer_module.time, "monotonic", lambda: now[0])
    return now


def make_sequencer(committed: dict[TP, int]) -> tuple[Sequencer, FakeConsumer]:
    consumer = FakeConsumer(set(committed))
    sequencer = Sequencer(FakeApp(consumer))

    async def start_offset(tp: TP) -> int:
        return committed[tp]

    sequencer._start_offset = start_offset  # the group's committed offset, as the broker would answer
    return sequencer, consumer


def test_a_partition_whose_records_stopped_coming_is_read_again_from_its_committed_offset(clock):
    # a worker took over at offset 186 of a 400-record partition; the fetch of 186..399 was dropped
    sequencer, consumer = make_sequencer({PRICES: 186, OTHER: 50})
    ends = {PRICES: 400, OTHER: 50}  # the other partition is done
    assert asyncio.run(sequencer.rescue(ends)) == []  # not yet: records may still be on their way
    clock[0] += STALL_S - 1
    assert asyncio.run(sequencer.rescue(ends)) == []
    clock[0] += 1
    assert asyncio.run(sequencer.rescue(ends)) == [PRICES]
    assert (PRICES, 186) in consumer.seeks and consumer.flow_active  # the flow resumed after the seek


def test_a_partition_that_delivers_or_is_done_is_never_read_again(clock):
    sequencer, consumer = make_sequencer({PRICES: 186, OTHER: 50})
    sequencer.add([Delivered(PRICES, 186)])  # records of it are waiting
    for _ in range(5):
        clock[0] += STALL_S
        assert asyncio.run(sequencer.rescue({PRICES: 400, OTHER: 50})) == []
    assert consumer.seeks == []


def test_progress_restarts_the_wait(clock):
    sequencer, _ = make_sequencer({PRICES: 186})
    asyncio.run(sequencer.rescue({PRICES: 400}))
    clock[0] += STALL_S - 1
    sequencer.advance(PRICES, 300)  # a batch was committed
    clock[0] += 2
    assert asyncio.run(sequencer.rescue({PRICES: 400})) == []


def test_a_log_end_that_re_reading_never_reaches_stops_being_re_read(clock):
    # transaction markers after the last record: the log end stays ahead of every record
    sequencer, consumer = make_sequencer({PRICES: 186})
    for _ in range(3 * HOLE_RETRIES):
        asyncio.run(sequencer.rescue({PRICES: 187}))
        clock[0] += STALL_S
    assert len(consumer.seeks) == HOLE_RETRIES + 1
