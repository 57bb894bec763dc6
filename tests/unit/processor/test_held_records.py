"""Items of a time-driven stage waiting for the worker's safe time (services.processor.app.HeldRecords)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from services.processor.app import HeldRecords


@dataclass
class Item:
    offset: int  # of its record
    index: int  # in its record
    at: float


def record(offset: int, event_time: float) -> Item:
    """A record of one item."""
    return Item(offset, 0, event_time)


event_times = st.lists(st.integers(0, 50).map(float), max_size=60)
safe_times = st.lists(st.integers(0, 60).map(float), min_size=1, max_size=8)


@given(event_times, st.integers(1, 10), safe_times)
def test_ready_records_come_out_in_event_time_order_and_the_oldest_waiting_offset_is_kept(times, batch, safes):
    held, offset, waiting = HeldRecords(), 0, {}
    safe_so_far = float("-inf")
    for step, safe in enumerate(safes):
        chunk = times[step * batch : (step + 1) * batch]
        held.add([record(offset + i, t) for i, t in enumerate(chunk)])
        waiting.update({offset + i: t for i, t in enumerate(chunk)})
        offset += len(chunk)
        safe_so_far = max(safe_so_far, safe)  # the safe time never goes back
        ready = held.pop_ready(safe_so_far)
        expected = sorted((t, o) for o, t in waiting.items() if t <= safe_so_far)
        assert [(r.at, r.offset) for r in ready] == expected
        for _, o in expected:
            del waiting[o]
        assert len(held) == len(waiting)
        assert held.oldest_offset() == (min(waiting) if waiting else None)


def test_a_record_waits_while_its_event_time_is_past_the_safe_time():
    held = HeldRecords()
    held.add([record(0, 100.0), record(1, 50.0), record(2, 70.0)])
    assert [r.offset for r in held.pop_ready(60.0)] == [1]
    assert held.oldest_offset() == 0  # offset 0 still waits: the committed offset stays there
    assert [r.offset for r in held.pop_ready(100.0)] == [2, 0]
    assert held.oldest_offset() is None and len(held) == 0


@given(st.lists(st.lists(st.integers(0, 50).map(float), min_size=1, max_size=8), max_size=12), safe_times)
def test_a_record_is_waiting_until_every_item_of_it_is_released(bundles, safes):
    """A bundle's items go at their own event times; its offset is committed past only after the last."""
    held = HeldRecords()
    held.add([Item(offset, index, t) for offset, times in enumerate(bundles) for index, t in enumerate(times)])
    released: list[Item] = []
    for safe in sorted(safes):
        ready = held.pop_ready(safe)
        assert [(i.at, i.offset, i.index) for i in ready] == sorted((i.at, i.offset, i.index) for i in ready)
        assert all(i.at <= safe for i in ready)
        released += ready
        done = {(i.offset, i.index) for i in released}
        waiting = [o for o, times in enumerate(bundles) if any((o, k) not in done for k in range(len(times)))]
        assert held.oldest_offset() == (waiting[0] if waiting else None)
    assert len(released) + len(held) == sum(map(len, bundles))


def test_a_bundle_holds_the_committed_offset_until_its_latest_item_goes():
    held = HeldRecords()
    held.add([Item(0, 0, 10.0), Item(0, 1, 90.0), Item(1, 0, 20.0)])
    assert [(i.offset, i.index) for i in held.pop_ready(50.0)] == [(0, 0), (1, 0)]
    assert held.oldest_offset() == 0  # item 1 of offset 0 still waits
    assert [(i.offset, i.index) for i in held.pop_ready(90.0)] == [(0, 1)]
    assert held.oldest_offset() is None


@given(st.lists(st.integers(0, 50).map(float), max_size=60), st.integers(0, 60).map(float), st.integers(0, 10))
def test_a_limited_release_takes_the_earliest_ready_items_and_leaves_the_rest_ready(times, safe, limit):
    held = HeldRecords()
    held.add([record(offset, t) for offset, t in enumerate(times)])
    ready_times = sorted((t, o) for o, t in enumerate(times) if t <= safe)
    first = held.pop_ready(safe, limit)
    assert [(r.at, r.offset) for r in first] == ready_times[:limit]
    assert held.has_ready(safe) == (len(ready_times) > limit)
    assert [(r.at, r.offset) for r in held.pop_ready(safe)] == ready_times[limit:]
    assert not held.has_ready(safe)
