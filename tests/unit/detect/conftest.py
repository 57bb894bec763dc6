"""Shared builders for the detection tests: configs from the real reference data, synthetic series."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta

import pytest

from pantau.detect import config as detect_config
from pantau.detect.conditions import Condition, Rejected
from pantau.detect.lifecycle import AlertState, LifecycleConfig, Transition, step_lifecycle
from pantau.detect.price import PriceConfig, PriceObservation, PriceState, step_price
from pantau.detect.timebase import WIB
from pantau.reference import load_reference

START = date(2023, 1, 1)


@pytest.fixture(scope="session")
def ref():
    return load_reference()


@pytest.fixture(scope="session")
def price_config(ref) -> PriceConfig:
    return detect_config.price_config(ref)


@pytest.fixture(scope="session")
def lifecycle_config(ref) -> LifecycleConfig:
    return detect_config.lifecycle_config(ref)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=WIB)


def daily(
    prices: Sequence[float],
    commodity: str = "beras",
    market: str = "pibc",
    start: date = START,
    grade: str = "rata_rata",
    level: str = "retail",
    province: str = "31",
) -> list[PriceObservation]:
    """One observation per day from `start`, at 10:00 WIB."""
    return [
        PriceObservation(commodity, market, price, at(start + timedelta(days=i)), level, grade, province)
        for i, price in enumerate(prices)
    ]


def run_prices(
    observations: Iterable[PriceObservation], config: PriceConfig, state: PriceState | None = None
) -> tuple[PriceState | None, list[Condition], list[Rejected]]:
    conditions: list[Condition] = []
    rejected: list[Rejected] = []
    for obs in observations:
        state, result = step_price(state, obs, config)
        if isinstance(result, Rejected):
            rejected.append(result)
        else:
            conditions.extend(result)
    return state, conditions, rejected


def run_lifecycle(conditions: Iterable[Condition], config: LifecycleConfig) -> list[Transition]:
    states: dict[str, AlertState] = {}
    transitions: list[Transition] = []
    for condition in conditions:
        states[condition.subject], out = step_lifecycle(states.get(condition.subject), condition, config)
        transitions.extend(out)
    return transitions


def kinds(transitions: Iterable[Transition]) -> list[str]:
    return [t.kind.value for t in transitions]
