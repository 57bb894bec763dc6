"""Decode/encode throughput of the event codec on the valid example events, one core.

    .venv/bin/python -m tests.benchmarks.bench_contracts [--seconds 1] [--repeat 3]   (or: make bench)

Prints the median events/s of `decode_event` (the processor's hot path) over all example events and
for PriceObserved alone (the most frequent event), next to orjson.loads + model validation (the
alternative) and plain orjson.loads (the floor), and `encode_event`."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from pantau.contracts.codec import EVENT_ADAPTER, decode_event, encode_event
from pantau.settings import REPO_ROOT

EXAMPLES = REPO_ROOT / "contracts" / "examples"


def rate(function: Callable[[Any], object], items: Sequence[Any], seconds: float) -> float:
    """Calls per second of function over items, for about `seconds`."""
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for item in items:
            function(item)
        count += len(items)
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per figure (median shown)")
    args = parser.parse_args(argv or [])
    # Compact, as on the wire.
    records = [orjson.dumps(orjson.loads(p.read_bytes())) for p in sorted(Path(EXAMPLES).glob("*/valid/*.json"))]
    prices = [r for r in records if b'"PriceObserved"' in r]
    events = [decode_event(r) for r in records]
    mean_bytes = statistics.mean(map(len, records))
    print(f"{len(records)} example events ({len(prices)} PriceObserved), mean {mean_bytes:.0f} bytes")
    cases: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        ("orjson.loads only (floor), all events", orjson.loads, records),
        ("decode_event, all events", decode_event, records),
        ("decode_event, PriceObserved", decode_event, prices),
        ("orjson.loads + validate_python, all", lambda r: EVENT_ADAPTER.validate_python(orjson.loads(r)), records),
        ("encode_event, all events", encode_event, events),
    ]
    for label, function, items in cases:
        median = statistics.median(rate(function, items, args.seconds) for _ in range(args.repeat))
        print(f"{label:<40} {median:>10,.0f} events/s  {1e6 / median:6.1f} us/event")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
