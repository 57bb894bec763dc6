"""Price spike detection for one (commodity, market) series, one observation at a time.

    state, result = step_price(state, observation, config)
    state, result = step_price(state, observation, config, in_place=True)  # caller owns `state`

`result` is a list with one Condition for the series (severity normal/watch/alert/crisis with its
signals as evidence), an empty list when the observation only filled in history (a late or
superseded same-day value), or a Rejected (Invalid / TooLate) for the processor to dead-letter;
a rejected observation leaves the state untouched.

State key: `{commodity}:{market_code}`, the key of pangan.price.v1, so no repartition is needed.
The state is bounded: a ring of the last RING_DAYS days (one value per WIB day, the latest by event
time wins, so repeated same-day observations never count twice) and the few numbers of the
seasonal-trend model. `to_json()` / `from_json()` give the table's changelog value.

Signals, each with its own severity; the series' raw severity is the highest of them:
- reference_price_excess_pct: price / (HET or HAP) - 1 above 0 is watch, above 10 % alert (what Bapanas
  reports to the inflation-control meeting). Only where a reference price exists for the
  observation's quality grade, price level and province on that day.
- change_7d_pct / change_28d_pct: rise against the median of the last three observed days at or before
  7 / 28 days ago, above the commodity's own p95 (watch) / p99 (alert).
- seasonal_deviation_sigma: WFP ALPS-style (log price - (trend + seasonal factor)) / residual sigma with
  ALPS classes (< 0.25 normal, < 1 stress = watch, < 2 alert, >= 2 crisis). The trend is an EWMA of
  the log price (Holt: level and slope), the seasonal factor twelve monthly values of the detrended
  price interpolated between mid-months (so it has no steps at month ends), sigma an EWMA of the
  winsorised residual with a per-commodity floor. All three learn only from days older than the
  lateness tolerance, so late observations within the tolerance change the model exactly as if they
  had arrived in order.
Holidays from the calendar divide prices by (1 + expected uplift) before the change and seasonal
signals, so Lebaran demand is expected, not alerted; the legal reference price is compared unadjusted.

A one-day glitch (a day more than glitch_ratio off both neighbours, which agree) stays in the history
but is not taught to the model. Persistence: the emitted severity is the lower of today's raw severity
and that of the previous observed day, so a move must hold on two different days; a one-day glitch
never alerts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from pantau.detect.calendar import NO_HOLIDAYS, HolidayCalendar
from pantau.detect.conditions import (
    AlertType,
    Condition,
    Invalid,
    Place,
    PlaceKind,
    Rejected,
    Severity,
    Signal,
    TooLate,
)
from pantau.detect.timebase import NaiveTimeError, date_to_day, day_to_date, timestamp, wib_day_of_ts

RING_DAYS = 40  # >= 28-day baseline + 7 days of look-back + the lateness tolerance
_SEVERITIES = (Severity.NORMAL, Severity.WATCH, Severity.ALERT, Severity.CRISIS)
_LABELS = tuple(s.label for s in _SEVERITIES)  # Enum property access is slow on the per-event path
_CHANGES = ((7, "change_7d_pct", "7d"), (28, "change_28d_pct", "28d"))


# Not frozen: a frozen dataclass's __init__ costs twice as much, and one is built per price event.
# Treat it as a value.
@dataclass(slots=True)
class PriceObservation:
    commodity: str
    market_code: str
    price_idr: float
    occurred_at: datetime
    price_level: str = "retail"
    quality_grade: str = "rata_rata"
    province_code: str | None = None  # BPS code; reference prices can be zoned by province
    place_kind: PlaceKind = PlaceKind.MARKET
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeBand:
    """Fractional rises (0.014 = 1.4 %) at which a change signal becomes watch / alert."""

    watch: float
    alert: float


@dataclass(frozen=True, slots=True)
class CommodityProfile:
    change_7d: ChangeBand
    change_28d: ChangeBand
    sigma_floor: float  # smallest residual sigma (log units) of the seasonal-trend deviation


@dataclass(frozen=True, slots=True)
class ReferencePrice:
    kind: str  # "het" (legal retail ceiling) or "hap" (government reference price)
    price_idr: float
    quality_grade: str
    price_level: str
    province_codes: frozenset[str] | None = None  # None: national
    effective_from: date | None = None

    def applies(self, obs: PriceObservation, day: int) -> bool:
        return (
            self.quality_grade == obs.quality_grade
            and self.price_level == obs.price_level
            and (self.province_codes is None or obs.province_code in self.province_codes)
            and (self.effective_from is None or date_to_day(self.effective_from) <= day)
        )


@dataclass(frozen=True, slots=True)
class AlpsSettings:
    level_halflife_days: float = 90.0
    slope_halflife_days: float | None = 365.0  # Holt trend slope; None: level only
    sigma_halflife_days: float = 365.0
    min_history_days: int = 90  # observed days before the deviation is computed at all
    seasonal_min_days: int = 365  # span of history before the seasonal factor is used
    seasonal_min_per_month: int = 20
    seasonal_rate: float = 0.02  # per observation in that month: about two years of memory
    clip_sigmas: float = 2.5  # residuals beyond this many sigma are clipped before learning
    watch_z: float = 0.25
    alert_z: float = 1.0
    crisis_z: float = 2.0


@dataclass(frozen=True)
class PriceConfig:
    profiles: Mapping[str, CommodityProfile]
    reference_prices: Mapping[str, tuple[ReferencePrice, ...]] = field(default_factory=dict)
    calendar: HolidayCalendar = NO_HOLIDAYS
    late_tolerance_days: int = 3
    invalid_ratio: float = 20.0  # a price this many times (or 1/this) its recent median is impossible
    glitch_ratio: float = 0.05  # a day this far off both (agreeing) neighbours is not taught to the model
    median_window_days: int = 14
    breach_watch: float = 0.0
    breach_alert: float = 0.10
    alps: AlpsSettings = AlpsSettings()

    def __post_init__(self) -> None:
        if not 0 <= self.late_tolerance_days <= RING_DAYS - 36:
            raise ValueError(f"late_tolerance_days must be 0..{RING_DAYS - 36}, got {self.late_tolerance_days}")
        # EWMA weights per observed day, from the half-lives
        object.__setattr__(self, "_level_rate", 1.0 - 0.5 ** (1.0 / self.alps.level_halflife_days))
        object.__setattr__(self, "_var_rate", 1.0 - 0.5 ** (1.0 / self.alps.sigma_halflife_days))
        slope_hl = self.alps.slope_halflife_days
        object.__setattr__(self, "_slope_rate", 1.0 - 0.5 ** (1.0 / slope_hl) if slope_hl else 0.0)


@dataclass(slots=True)
class PriceState:
    """Everything the detector remembers about one series (see module docstring)."""

    last_day: int = -1  # newest observed WIB day (days since epoch)
    days: list[int] = field(default_factory=lambda: [-1] * RING_DAYS)  # slot d % RING_DAYS holds day d
    prices: list[float] = field(default_factory=lambda: [0.0] * RING_DAYS)
    stamps: list[float] = field(default_factory=lambda: [0.0] * RING_DAYS)  # event time of the kept value
    raw: list[int] = field(default_factory=lambda: [0] * RING_DAYS)  # raw severity computed for that day
    model_day: int = -1  # days up to this one are folded into the seasonal-trend model
    learned_day: int = -1  # the last observed day folded in (level and slope are as of this day)
    level: float = 0.0  # trend level: EWMA of the deseasonalised log price
    slope: float = 0.0  # trend slope per day (Holt): EWMA of the level's daily change
    var: float = 0.0  # EWMA of the squared winsorised residual
    n_obs: int = 0
    first_day: int = -1
    season: list[float] = field(default_factory=lambda: [0.0] * 12)  # at mid-month, log units
    season_n: list[int] = field(default_factory=lambda: [0] * 12)

    def copy(self) -> PriceState:
        return PriceState(
            self.last_day,
            self.days.copy(),
            self.prices.copy(),
            self.stamps.copy(),
            self.raw.copy(),
            self.model_day,
            self.learned_day,
            self.level,
            self.slope,
            self.var,
            self.n_obs,
            self.first_day,
            self.season.copy(),
            self.season_n.copy(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "last_day": self.last_day,
            "days": self.days,
            "prices": self.prices,
            "stamps": self.stamps,
            "raw": self.raw,
            "model_day": self.model_day,
            "learned_day": self.learned_day,
            "level": self.level,
            "slope": self.slope,
            "var": self.var,
            "n_obs": self.n_obs,
            "first_day": self.first_day,
            "season": self.season,
            "season_n": self.season_n,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PriceState:
        if data.get("v") != 1:
            raise ValueError(f"unknown PriceState version {data.get('v')!r}; expected 1")
        return cls(
            data["last_day"],
            list(data["days"]),
            [float(p) for p in data["prices"]],
            [float(s) for s in data["stamps"]],
            list(data["raw"]),
            data["model_day"],
            data["learned_day"],
            float(data["level"]),
            float(data["slope"]),
            float(data["var"]),
            data["n_obs"],
            data["first_day"],
            [float(s) for s in data["season"]],
            list(data["season_n"]),
        )


MIN_PRICE_IDR = 1.0  # below one rupiah is a unit error, and changes against it overflow


def impossible_price(price: float) -> str | None:
    """Why a price cannot be real, or None."""
    if price >= MIN_PRICE_IDR and math.isfinite(price):  # NaN fails `>=`
        return None
    return f"price_idr must be a number of at least {MIN_PRICE_IDR:g} rupiah, got {price!r}"


def price_subject(commodity: str, market_code: str) -> str:
    return f"price_spike:{commodity}:{market_code}"


def step_price(
    state: PriceState | None, obs: PriceObservation, config: PriceConfig, *, in_place: bool = False
) -> tuple[PriceState, list[Condition] | Rejected]:
    """Fold one observation into the series state; see the module docstring for the result.

    The given state is copied before any change, unless `in_place` (the caller owns it: a processor
    batch stepping one key many times copies it once). A rejected observation never changes it."""
    state = state if state is not None else PriceState()
    price = obs.price_idr
    problem = impossible_price(price)
    if problem:
        return state, Invalid(problem)
    profile = config.profiles.get(obs.commodity)
    if profile is None:
        return state, Invalid(f"no detection profile for commodity {obs.commodity!r}; add it to the PriceConfig")
    try:
        ts = timestamp(obs.occurred_at)
    except NaiveTimeError as exc:
        return state, Invalid(str(exc))
    day = wib_day_of_ts(ts)
    last_day = state.last_day
    tolerance = config.late_tolerance_days
    if last_day >= 0 and day < last_day - tolerance:
        return state, TooLate(
            f"observation for {day_to_date(day)} arrived after {day_to_date(last_day)}; "
            f"days older than {tolerance} days are final"
        )
    median = _recent_median(state, max(day, last_day), day, config.median_window_days)
    if median is not None and not (median / config.invalid_ratio <= price <= median * config.invalid_ratio):
        return state, Invalid(
            f"price_idr {price:g} is more than {config.invalid_ratio:g}x off the recent median {median:g}"
        )

    slot = day % RING_DAYS
    if state.days[slot] == day and ts < state.stamps[slot]:
        return state, []  # an older value for a day that already has a newer one
    if not in_place:
        state = state.copy()
    state.days[slot] = day
    state.prices[slot] = price
    state.stamps[slot] = ts
    if day > last_day:
        state.last_day = last_day = day
    _fold_model(state, last_day - tolerance - 1, obs.commodity, profile, config)
    if day < last_day:
        return state, []  # backfill: history updated; the latest day's condition stands

    return state, [_evaluate(state, obs, day, slot, profile, config)]


def _evaluate(
    state: PriceState,
    obs: PriceObservation,
    day: int,
    slot: int,
    profile: CommodityProfile,
    config: PriceConfig,
) -> Condition:
    price = obs.price_idr
    uplifts = config.calendar.uplifts(obs.commodity)
    holiday = config.calendar.holiday(obs.commodity, day) if uplifts else None
    adjusted = price / (1.0 + holiday[0]) if holiday else price
    signals: list[Signal] = []
    raw = 0

    for ref in config.reference_prices.get(obs.commodity, ()):
        if ref.applies(obs, day):
            excess = price / ref.price_idr - 1.0
            level = 2 if excess > config.breach_alert else 1 if excess > config.breach_watch else 0
            threshold = config.breach_alert if level == 2 else config.breach_watch
            signals.append(
                Signal(
                    "reference_price_excess_pct",
                    excess * 100.0,
                    threshold * 100.0,
                    ref.price_idr,
                    ref.kind,
                    _SEVERITIES[level],
                )
            )
            raw = level
            break

    for lag, name, window in _CHANGES:
        band = profile.change_7d if lag == 7 else profile.change_28d
        base = _baseline(state, day - lag, uplifts)
        if base is None:
            note = f"no observation in the 7 days up to {lag} days ago"
            signals.append(Signal(name, 0.0, band.watch * 100.0, None, window, Severity.NORMAL, note))
            continue
        change = adjusted / base - 1.0
        level = 2 if change > band.alert else 1 if change > band.watch else 0
        threshold = band.alert if level == 2 else band.watch
        signals.append(Signal(name, change * 100.0, threshold * 100.0, base, window, _SEVERITIES[level]))
        if level > raw:
            raw = level

    alps = config.alps
    if state.n_obs < alps.min_history_days:
        note = f"needs {alps.min_history_days} days of history, has {state.n_obs}"
        signals.append(Signal("seasonal_deviation_sigma", 0.0, alps.alert_z, None, "alps", Severity.NORMAL, note))
    else:
        seasonal = _seasonal_active(state, alps)
        trend = state.level + state.slope * (day - state.learned_day)
        expected_log = trend + (_season_effect(state, day) if seasonal else 0.0)
        sigma = max(math.sqrt(state.var), profile.sigma_floor)
        z = (math.log(adjusted) - expected_log) / sigma
        level = 3 if z >= alps.crisis_z else 2 if z >= alps.alert_z else 1 if z >= alps.watch_z else 0
        threshold = (alps.watch_z, alps.watch_z, alps.alert_z, alps.crisis_z)[level]
        note = None
        if not seasonal:
            span = state.model_day - state.first_day + 1
            note = (
                f"trend only: the seasonal factor needs {alps.seasonal_min_days} days of history "
                f"and {alps.seasonal_min_per_month} observations per month, has {span} days"
            )
        expected_price = math.exp(expected_log) * (1.0 + holiday[0] if holiday else 1.0)
        signals.append(
            Signal("seasonal_deviation_sigma", z, threshold, expected_price, "alps", _SEVERITIES[level], note)
        )
        if level > raw:
            raw = level

    state.raw[slot] = raw
    previous = _previous_raw(state, day)
    severity = min(raw, previous) if previous is not None else 0
    details: dict[str, Any] = {
        "price_idr": price,
        "quality_grade": obs.quality_grade,
        "price_level": obs.price_level,
        "day": _iso_day(day),
        "raw_severity": _LABELS[raw],
        "previous_day_severity": _LABELS[previous] if previous is not None else None,
    }
    if holiday:
        details["holiday"] = {"code": holiday[1], "expected_uplift_pct": holiday[0] * 100.0}
    return Condition(
        alert_type=AlertType.PRICE_SPIKE,
        subject=price_subject(obs.commodity, obs.market_code),
        severity=_SEVERITIES[severity],
        observed_at=obs.occurred_at,
        commodity=obs.commodity,
        place=_place(obs.place_kind, obs.market_code),
        signals=tuple(signals),
        details=details,
    )


def _recent_median(state: PriceState, newest: int, skip_day: int, window: int) -> float | None:
    days, prices = state.days, state.prices
    values = []
    for d in range(max(newest - window, newest - RING_DAYS + 1), newest + 1):  # the ring holds no older day
        j = d % RING_DAYS
        if days[j] == d and d != skip_day:
            values.append(prices[j])
    if not values:
        return None
    values.sort()
    return values[len(values) // 2]


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    return day_to_date(day).isoformat()


@lru_cache(maxsize=4096)
def _place(kind: PlaceKind, code: str) -> Place:
    return Place(kind, code)


def _baseline(state: PriceState, target: int, uplifts: Mapping[int, float] | None) -> float | None:
    """Median of the last three observed (holiday-adjusted) prices at or before `target`, within 7 days."""
    days, prices = state.days, state.prices
    values = []
    for d in range(target, target - 7, -1):
        j = d % RING_DAYS
        if days[j] == d:
            values.append(prices[j] / (1.0 + uplifts.get(d, 0.0)) if uplifts else prices[j])
            if len(values) == 3:
                values.sort()
                return values[1]
    if not values:
        return None
    return values[0] if len(values) == 1 else (values[0] + values[1]) / 2.0


def _previous_raw(state: PriceState, day: int) -> int | None:
    days = state.days
    for d in range(day - 1, day - RING_DAYS, -1):
        j = d % RING_DAYS
        if days[j] == d:
            return state.raw[j]
    return None


def _seasonal_active(state: PriceState, alps: AlpsSettings) -> bool:
    return (
        state.model_day - state.first_day + 1 >= alps.seasonal_min_days
        and min(state.season_n) >= alps.seasonal_min_per_month
    )


def _season_position(day: int) -> tuple[int, int, float]:
    """The two mid-months around `day` and the weight of the second (year length 365.2425 days)."""
    position = (day % 365.2425) / 365.2425 * 12.0 - 0.5
    if position < 0.0:
        position += 12.0
    first = int(position)
    return first, (first + 1) % 12, position - first


def _season_effect(state: PriceState, day: int) -> float:
    first, second, weight = _season_position(day)
    season = state.season
    return (1.0 - weight) * season[first] + weight * season[second] - sum(season) / 12.0


def _fold_model(state: PriceState, upto: int, commodity: str, profile: CommodityProfile, config: PriceConfig) -> None:
    """Teach the seasonal-trend model every observed day after model_day up to `upto` (final days)."""
    if state.model_day >= upto:
        return
    days, prices = state.days, state.prices
    for d in range(max(state.model_day + 1, upto - RING_DAYS + 1), upto + 1):
        j = d % RING_DAYS
        if days[j] == d and not _is_glitch(state, d, prices[j], config.glitch_ratio):
            _learn(state, d, prices[j], commodity, profile, config)
    state.model_day = upto


def _neighbour(state: PriceState, day: int, step: int) -> float | None:
    for d in range(day + step, day + 4 * step, step):
        j = d % RING_DAYS
        if state.days[j] == d:
            return state.prices[j]
    return None


def _is_glitch(state: PriceState, day: int, price: float, ratio: float) -> bool:
    """A one-day spike: off by more than `ratio` from both neighbours (within 3 days), which agree within 1 %.

    Such a day is kept in the history (a move that holds is real) but not taught to the model, so a
    PIHPS glitch does not drag the trend. Days are only folded once final, so both neighbours are known.
    """
    before, after = _neighbour(state, day, -1), _neighbour(state, day, 1)
    if before is None or after is None or abs(before / after - 1.0) > 0.01:
        return False
    return abs(price / before - 1.0) > ratio and abs(price / after - 1.0) > ratio


def _learn(
    state: PriceState, day: int, price: float, commodity: str, profile: CommodityProfile, config: PriceConfig
) -> None:
    alps = config.alps
    uplifts = config.calendar.uplifts(commodity)
    y = math.log(price / (1.0 + uplifts.get(day, 0.0)) if uplifts else price)
    if state.n_obs == 0:
        state.level = y
        state.var = profile.sigma_floor**2
        state.first_day = day
    else:
        gap = day - state.learned_day
        seasonal = _season_effect(state, day) if _seasonal_active(state, alps) else 0.0
        forecast = state.level + state.slope * gap
        residual = y - forecast - seasonal
        limit = alps.clip_sigmas * max(math.sqrt(state.var), profile.sigma_floor)
        clipped = limit if residual > limit else -limit if residual < -limit else residual
        state.var += config._var_rate * (clipped * clipped - state.var)  # type: ignore[attr-defined]
        level = forecast + config._level_rate * clipped  # type: ignore[attr-defined]
        state.slope += config._slope_rate * ((level - state.level) / gap - state.slope)  # type: ignore[attr-defined]
        state.level = level
    state.learned_day = day
    first, second, weight = _season_position(day)
    nearest = second if weight >= 0.5 else first
    season = state.season
    error = y - state.level - ((1.0 - weight) * season[first] + weight * season[second])
    rate = max(alps.seasonal_rate, 1.0 / (state.season_n[nearest] + 1))  # running mean until EWMA takes over
    season[first] += rate * (1.0 - weight) * error
    season[second] += rate * weight * error
    state.season_n[nearest] += 1
    state.n_obs += 1
