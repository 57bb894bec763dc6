"""Detector configuration from the reference data (contracts/reference/ via `pantau.reference`).

The detectors take plain config objects; this module is the one place that fills them from the
reference files, plus the few figures the contract does not hold yet (28-day change quantiles,
price-ratio bands), each with where it comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pantau.detect.actions import Names
from pantau.detect.calendar import DEFAULT_HOLIDAY_UPLIFT, HolidayCalendar
from pantau.detect.disparity import DisparityConfig, DisparityPair
from pantau.detect.lifecycle import LifecycleConfig
from pantau.detect.price import ChangeBand, CommodityProfile, PriceConfig, ReferencePrice
from pantau.detect.supply import ALERT_COVER_DAYS, CRISIS_COVER_DAYS, SupplyConfig, SupplyTarget
from pantau.detect.timebase import date_to_day

# Rise over 28 days, p95 / p99, from PIHPS 2022-01..2026-02 of the 32 provinces other than Lampung and
# DKI Jakarta (those two are what the replay evaluates). Same method as contracts/reference/tools/
# price_change_quantiles.py but 28 days and rises only. Commodities without a series: 2.5x the 7-day band.
CHANGE_28D: Mapping[str, ChangeBand] = {
    "beras": ChangeBand(0.046, 0.087),
    "daging_ayam": ChangeBand(0.136, 0.216),
    "daging_sapi": ChangeBand(0.032, 0.072),
    "telur_ayam": ChangeBand(0.100, 0.169),
    "bawang_merah": ChangeBand(0.351, 0.554),
    "bawang_putih": ChangeBand(0.113, 0.192),
    "cabai_merah": ChangeBand(0.561, 0.997),
    "cabai_rawit": ChangeBand(0.635, 1.137),
    "minyak_goreng": ChangeBand(0.040, 0.254),
    "gula_pasir": ChangeBand(0.042, 0.078),
}
CHANGE_28D_FROM_7D = 2.5

# Jakarta / Lampung price ratio band. Rice: the project's documented 1.07-1.19. Others: the 2.5th and
# 97.5th percentile of the PIHPS province-average ratio prov_31 / prov_18, 2022-01..2026-02 (in-sample:
# recalibrate once a longer series is imported).
RATIO_BANDS: Mapping[str, tuple[float, float]] = {
    "beras": (1.07, 1.19),
    "daging_ayam": (1.07, 1.25),
    "daging_sapi": (1.03, 1.12),
    "telur_ayam": (0.96, 1.11),
    "bawang_merah": (1.13, 1.55),
    "bawang_putih": (1.20, 1.62),
    "cabai_merah": (1.01, 1.65),
    "cabai_rawit": (1.06, 1.48),
    "minyak_goreng": (1.02, 1.13),
    "gula_pasir": (1.04, 1.10),
}


def commodity_profile(commodity: Any) -> CommodityProfile:
    """Thresholds for one `pantau.reference.Commodity`; sigma floor = half the 28-day p95 rise."""
    change_7d = ChangeBand(commodity.price_change_7d.p95_pct / 100.0, commodity.price_change_7d.p99_pct / 100.0)
    change_28d = CHANGE_28D.get(
        commodity.code, ChangeBand(change_7d.watch * CHANGE_28D_FROM_7D, change_7d.alert * CHANGE_28D_FROM_7D)
    )
    return CommodityProfile(change_7d=change_7d, change_28d=change_28d, sigma_floor=change_28d.watch / 2.0)


def holiday_calendar(ref: Any, uplift: Mapping[str, Mapping[str, float]] = DEFAULT_HOLIDAY_UPLIFT) -> HolidayCalendar:
    return HolidayCalendar.from_reference(ref.holidays, uplift)


def price_config(ref: Any, **overrides: Any) -> PriceConfig:
    """PriceConfig for every commodity in the reference data (holidays included)."""
    profiles = {c.code: commodity_profile(c) for c in ref.commodities}
    reference_prices = {
        c.code: tuple(
            ReferencePrice(
                kind=p.kind,
                price_idr=p.price_idr,
                quality_grade=p.quality_grade,
                price_level=p.price_level,
                province_codes=frozenset(p.province_codes) if p.province_codes is not None else None,
                effective_from=p.effective_from,
            )
            for p in c.reference_prices
        )
        for c in ref.commodities
    }
    settings: dict[str, Any] = {"calendar": holiday_calendar(ref), **overrides}
    return PriceConfig(profiles=profiles, reference_prices=reference_prices, **settings)


def disparity_config(
    ref: Any, numerator: str = "prov_31", denominator: str = "prov_18", **overrides: Any
) -> DisparityConfig:
    """Jakarta / Lampung ratio pairs for every commodity with a band."""
    known = {c.code for c in ref.commodities}
    pairs = tuple(
        DisparityPair(commodity, numerator, denominator, low, high)
        for commodity, (low, high) in RATIO_BANDS.items()
        if commodity in known
    )
    return DisparityConfig(pairs=pairs, **overrides)


def lifecycle_config(ref: Any, **overrides: Any) -> LifecycleConfig:
    return LifecycleConfig(names=Names.from_reference(ref), **overrides)


# Destinations without a safe stock in the reference data: hold this many days of requirement (assumption).
DEFAULT_SAFE_STOCK_DAYS = 3.0
# ... and the stock estimate starts (and the simulator keeps its stock) this much above it.
DEFAULT_INITIAL_STOCK_DAYS = DEFAULT_SAFE_STOCK_DAYS * 1.5
# Those are produce markets (Kramat Jati), which sell as it comes: their stock is about this many days of
# arrivals (so a usual inflow at the requirement keeps it where it starts).
PRODUCE_TURNOVER_DAYS = DEFAULT_INITIAL_STOCK_DAYS
# Alert and crisis cover as shares of the safe stock's cover, for destinations whose safe stock is short
# (3 days of produce): below SupplyTarget's day thresholds (5 and 2 days, set for Cipinang's 8-10 days
# of rice), so that a stock at its usual level is never an alert.
ALERT_COVER_SHARE = 0.6
CRISIS_COVER_SHARE = 0.25


# Mudik: Jakarta empties over Lebaran, and its wholesale markets need, receive and sell less. Assumption
# (no arrival records yet): about 60 % of the usual from two days before Idul Fitri to four days after.
MUDIK_DAYS = range(-2, 5)
MUDIK_DEMAND_SHARE = 0.6


def supply_config(ref: Any, **overrides: Any) -> SupplyConfig:
    calendar = {
        date_to_day(entry.date) + offset: MUDIK_DEMAND_SHARE
        for entry in ref.holiday("idul_fitri").dates
        for offset in MUDIK_DAYS
    }
    return SupplyConfig(**{"demand_calendar": calendar, **overrides})


def supply_targets(ref: Any, **overrides: Any) -> dict[str, SupplyTarget]:
    """One SupplyTarget per destination x commodity with a daily requirement, keyed `{commodity}:{destination}`.

    The stock estimate starts at the middle of the safe-stock range (the reference data has no stock
    report yet); without a range, at DEFAULT_INITIAL_STOCK_DAYS of requirement.
    """
    targets = {}
    for market in ref.supply_destinations:
        for supply in market.supply:
            if not supply.daily_requirement_kg:
                continue
            daily = float(supply.daily_requirement_kg)
            if supply.safe_stock_kg is not None:  # a stocking market (Cipinang)
                safe = float(supply.safe_stock_kg.min)
                initial = (supply.safe_stock_kg.min + supply.safe_stock_kg.max) / 2.0
                turnover_days = None
            else:
                safe = daily * DEFAULT_SAFE_STOCK_DAYS
                initial = daily * DEFAULT_INITIAL_STOCK_DAYS
                turnover_days = PRODUCE_TURNOVER_DAYS
            watch_days = safe / daily
            limits = {
                "alert_cover_days": min(ALERT_COVER_DAYS, ALERT_COVER_SHARE * watch_days),
                "crisis_cover_days": min(CRISIS_COVER_DAYS, CRISIS_COVER_SHARE * watch_days),
                "turnover_days": turnover_days,
            }
            target = SupplyTarget(supply.commodity, market.code, daily, safe, initial, **{**limits, **overrides})
            targets[target.key] = target
    return targets
