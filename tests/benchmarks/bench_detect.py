"""Micro-benchmarks of the detectors' per-event cost (`make bench` prints them; no timed tests).

.venv/bin/python -m tests.benchmarks.bench_detect [N]   (or: make bench)
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta

import orjson

from pantau.detect.calendar import HolidayCalendar, HolidayWindow
from pantau.detect.conditions import Rejected
from pantau.detect.price import (
    ChangeBand,
    CommodityProfile,
    PriceConfig,
    PriceObservation,
    PriceState,
    ReferencePrice,
    step_price,
)
from pantau.detect.timebase import WIB

SERIES = 100  # distinct (commodity, market) series, as in a processor partition


def _observations(n: int) -> list[PriceObservation]:
    """n daily observations spread over SERIES series, with a rise, a glitch and a holiday in them."""
    start = datetime(2022, 1, 1, 10, 0, tzinfo=WIB)
    days = n // SERIES + 1
    out = []
    for day in range(days):
        price = 13_000.0 * (1.0 + 0.0002 * day) * (1.15 if 400 <= day % 700 < 460 else 1.0)
        if day % 97 == 0:
            price *= 0.93  # a one-day glitch
        at = start + timedelta(days=day)
        for series in range(SERIES):
            out.append(PriceObservation("beras", f"m{series}", price + series, at, "retail", "medium", "31"))
            if len(out) == n:
                return out
    return out


def bench_price_detector(n: int = 200_000, repeats: int = 3) -> dict[str, float]:
    """Run n observations through step_price (100 series, daily, one value per day) and time it.

    Returns events/s for step_price alone, by wall clock and by this process's CPU time (the fair
    figure on a shared machine), and with an orjson round trip of the state per event (what a table with
    a changelog costs on top).
    """
    profile = CommodityProfile(ChangeBand(0.014, 0.032), ChangeBand(0.046, 0.087), 0.023)
    calendar = HolidayCalendar([HolidayWindow("idul_fitri", datetime(2023, 4, 22).date(), 14, {"beras": 0.01})])
    config = PriceConfig(
        profiles={"beras": profile},
        reference_prices={"beras": (ReferencePrice("het", 13_500.0, "medium", "retail", frozenset({"31"})),)},
        calendar=calendar,
    )
    observations = _observations(n)
    conditions = rejected = 0
    step_seconds = step_cpu_seconds = float("inf")
    for _ in range(repeats):  # best of `repeats`: the machine's other work only ever slows a run down
        states: dict[str, PriceState] = {}
        conditions = rejected = 0
        started, started_cpu = time.perf_counter(), time.process_time()
        for obs in observations:
            key = obs.market_code
            states[key], result = step_price(states.get(key), obs, config)
            if isinstance(result, Rejected):
                rejected += 1
            else:
                conditions += len(result)
        step_seconds = min(step_seconds, time.perf_counter() - started)
        step_cpu_seconds = min(step_cpu_seconds, time.process_time() - started_cpu)

    states = {}
    started = time.perf_counter()
    for obs in observations:
        key = obs.market_code
        state, _ = step_price(states.get(key), obs, config)
        states[key] = PriceState.from_json(orjson.loads(orjson.dumps(state.to_json())))
    json_seconds = time.perf_counter() - started
    return {
        "events": float(len(observations)),
        "conditions": float(conditions),
        "rejected": float(rejected),
        "step_events_per_s": len(observations) / step_seconds,
        "step_events_per_cpu_s": len(observations) / step_cpu_seconds,
        "step_with_json_state_events_per_s": len(observations) / json_seconds,
    }


def main(argv: list[str] | None = None) -> None:
    n = int(argv[0]) if argv else 200_000
    figures = bench_price_detector(n)
    print(
        f"price detector: {figures['step_events_per_s']:,.0f} events/s step_price "
        f"({figures['step_events_per_cpu_s']:,.0f} per CPU second), "
        f"{figures['step_with_json_state_events_per_s']:,.0f} events/s with an orjson state round trip "
        f"({figures['events']:,.0f} events, {figures['conditions']:,.0f} conditions)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
