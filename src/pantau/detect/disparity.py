"""Price disparity between two places for one commodity (Jakarta / Lampung), one ratio per day.

    state, result = step_disparity(state, observation, pair, config)

State key: `{commodity}:{numerator}:{denominator}` (e.g. "beras:prov_31:prov_18"); the processor
routes every price observation of the pair's two markets there (group_by commodity). The state
keeps the latest price of each side, the day still open and the current run outside the band.

A day is judged once, when it closes: at the first observation of a later day, with each side's
latest price then (at most max_age_days apart). Judging at every observation made the result depend
on which province's report of the day came first, which in a processor is an accident of
partitions and batches; a day's ratio is now the same in any order, at the cost of waiting for the
next day's first report. Outside the band for fewer than persist_days judged days is watch; for
persist_days or more alert; and crisis when also beyond the band by more than its own width. A
one-day glitch on either side therefore never alerts. Observations older than a side's latest price
change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from pantau.detect.conditions import (
    AlertType,
    Condition,
    Invalid,
    Place,
    PlaceKind,
    Rejected,
    Severity,
    Signal,
)
from pantau.detect.price import PriceObservation, impossible_price
from pantau.detect.timebase import WIB, NaiveTimeError, day_to_date, timestamp, wib_day_of_ts


@dataclass(frozen=True, slots=True)
class DisparityPair:
    commodity: str
    numerator: str  # market code of the consuming side, e.g. prov_31 (DKI Jakarta)
    denominator: str  # market code of the producing side, e.g. prov_18 (Lampung)
    low: float
    high: float

    @property
    def key(self) -> str:
        return f"{self.commodity}:{self.numerator}:{self.denominator}"

    @property
    def subject(self) -> str:
        return f"price_disparity:{self.key}"


@dataclass(frozen=True)
class DisparityConfig:
    pairs: tuple[DisparityPair, ...] = ()
    max_age_days: int = 3
    persist_days: int = 3

    def __post_init__(self) -> None:
        by_series: dict[tuple[str, str], tuple[DisparityPair, ...]] = {}
        for pair in self.pairs:
            for market in dict.fromkeys((pair.numerator, pair.denominator)):
                by_series[(pair.commodity, market)] = (*by_series.get((pair.commodity, market), ()), pair)
        object.__setattr__(self, "_by_series", by_series)  # asked once per price event

    def pairs_for(self, obs: PriceObservation) -> tuple[DisparityPair, ...]:
        return self._by_series.get((obs.commodity, obs.market_code), ())  # type: ignore[attr-defined]


@dataclass(slots=True)
class DisparityState:
    num_day: int = -1
    num_price: float = 0.0
    num_ts: float = 0.0
    den_day: int = -1
    den_price: float = 0.0
    den_ts: float = 0.0
    eval_day: int = -1  # last day the ratio was judged
    outside_days: int = 0  # judged days in the current run outside the band
    outside_side: int = 0  # +1 above the band, -1 below, 0 inside
    open_day: int = -1  # newest day observed on either side: judged when a later day comes

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, **{name: getattr(self, name) for name in self.__slots__}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DisparityState:
        if data.get("v") != 1:
            raise ValueError(f"unknown DisparityState version {data.get('v')!r}; expected 1")
        values = {name: data[name] for name in cls.__slots__ if name in data or name != "open_day"}
        values.setdefault("open_day", max(data["num_day"], data["den_day"]))  # written before days closed
        return cls(**values)


def step_disparity(
    state: DisparityState | None, obs: PriceObservation, pair: DisparityPair, config: DisparityConfig
) -> tuple[DisparityState, list[Condition] | Rejected]:
    state = state if state is not None else DisparityState()
    if obs.commodity != pair.commodity or obs.market_code not in (pair.numerator, pair.denominator):
        raise ValueError(f"observation {obs.commodity}:{obs.market_code} does not belong to pair {pair.key}")
    problem = impossible_price(obs.price_idr)
    if problem:
        return state, Invalid(problem)
    try:
        ts = timestamp(obs.occurred_at)
    except NaiveTimeError as exc:
        return state, Invalid(str(exc))
    day = wib_day_of_ts(ts)
    new = DisparityState(*(getattr(state, name) for name in DisparityState.__slots__))
    conditions = []
    if day > new.open_day >= 0:
        closed = _judge_day(new, new.open_day, pair, config)
        if closed is not None:
            conditions.append(closed)
    if obs.market_code == pair.numerator:
        if (day, ts) >= (new.num_day, new.num_ts):
            new.num_day, new.num_price, new.num_ts = day, obs.price_idr, ts
    elif (day, ts) >= (new.den_day, new.den_ts):
        new.den_day, new.den_price, new.den_ts = day, obs.price_idr, ts
    new.open_day = max(new.open_day, day)
    return new, conditions


def _judge_day(new: DisparityState, day: int, pair: DisparityPair, config: DisparityConfig) -> Condition | None:
    """The ratio of the closing `day`, from each side's latest price; None when a side is missing or stale."""
    if new.num_day < 0 or new.den_day < 0 or abs(new.num_day - new.den_day) > config.max_age_days:
        return None
    ratio = new.num_price / new.den_price
    side = 1 if ratio > pair.high else -1 if ratio < pair.low else 0
    if side == 0:
        new.outside_days, new.outside_side = 0, 0
    elif side != new.outside_side:
        new.outside_days, new.outside_side = 1, side
    elif day > new.eval_day:
        new.outside_days += 1
    new.eval_day = max(new.eval_day, day)

    width = pair.high - pair.low
    if side == 0:
        severity = Severity.NORMAL
    elif new.outside_days < config.persist_days:
        severity = Severity.WATCH
    elif ratio > pair.high + width or ratio < pair.low - width:
        severity = Severity.CRISIS
    else:
        severity = Severity.ALERT
    threshold = pair.high if side >= 0 else pair.low
    signal = Signal(
        "price_ratio",
        ratio,
        threshold,
        (pair.low + pair.high) / 2.0,
        f"{new.outside_days}d outside",
        severity,
    )
    return Condition(
        alert_type=AlertType.PRICE_DISPARITY,
        subject=pair.subject,
        severity=severity,
        # the end of the day judged: the same whichever report closed it
        observed_at=datetime.combine(day_to_date(day + 1), time(0), tzinfo=WIB),
        commodity=pair.commodity,
        place=Place(PlaceKind.PROVINCE if pair.numerator.startswith("prov_") else PlaceKind.MARKET, pair.numerator),
        signals=(signal,),
        details={
            "numerator": pair.numerator,
            "denominator": pair.denominator,
            "numerator_price_idr": new.num_price,
            "denominator_price_idr": new.den_price,
            "numerator_day": day_to_date(new.num_day).isoformat(),
            "denominator_day": day_to_date(new.den_day).isoformat(),
            "ratio": ratio,
            "low": pair.low,
            "high": pair.high,
            "outside_days": new.outside_days,
        },
    )
