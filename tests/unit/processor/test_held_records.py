"""Records of a time-driven stage waiting for the worker's safe time (services.processor.app.HeldRecords)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from services.processor.app import HeldRecords
from services.processor.committer import EVENT_TIME_HEADER


@dataclass
class Record:
    offset: int
    headers: list[tuple[str, bytes]]


def record(offset: int, event_time: float) -> Record:
    return Record(offset, [(EVENT_TIME_HEADER, str(event_time).encode())])


event_times = st.lists(st.integers(0, 50).map(float), max_size=60)
safe_times = st.lists(st.integers(0, 60).map(float), min_size=1, max_size=8)


@given(event_times, st.integers(1, 10), safe_times)
def test_ready_records_come_out_in_event_time_order_and_the_oldest_waiting_offset_is_kept(times, batch, safes):
    held, offset, waiting = HeldRecords(), 0, {}
    safe_so_far = float("-inf")
    for step, safe in enumerate(safes):
        chunk = times[step * batch : (step + 1) * batch]
        held.add([record(offset + i, t) for i, t in enumerate(chunk)], chunk)
        waiting.update({offset + i: t for i, t in enumerate(chunk)})
        offset += len(chunk)
        safe_so_far = max(safe_so_far, safe)  # the safe time never goes back
        ready = held.pop_ready(safe_so_far)
        expected = sorted((t, o) for o, t in waiting.items() if t <= safe_so_far)
        assert [(float(r.headers[0][1]), r.offset) for r in ready] == expected
        for _, o in expected:
            del waiting[o]
        assert len(held) == len(waiting)
        assert held.oldest_offset() == (min(waiting) if waiting else None)


def test_a_record_waits_while_its_event_time_is_past_the_safe_time():
    held = HeldRecords()
    held.add([record(0, 100.0), record(1, 50.0), record(2, 70.0)], [100.0, 50.0, 70.0])
    assert [r.offset for r in held.pop_ready(60.0)] == [1]
    assert held.oldest_offset() == 0  # offset 0 still waits: the committed offset stays there
    assert [r.offset for r in held.pop_ready(100.0)] == [2, 0]
    assert held.oldest_offset() is None and len(held) == 0
