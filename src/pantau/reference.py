"""Reference data (commodities, markets, regencies, route checkpoints, holidays) from contracts/reference/.

The JSON files are the single source; each has a JSON Schema beside it (contracts/reference/schemas/)
and a `version` (major in the file name, minor bumped by additive edits). `load_reference()` parses
them once into frozen models, checks that codes used in one file exist in the others, and raises
`ReferenceDataError` naming the file and the field when something is wrong.

    ref = load_reference()
    ref.commodity("beras").reference_price("medium", province_code="31").price_idr   # 13500
    ref.market("pibc").supply_for("beras").daily_requirement_kg
    ref.province_market_for_pihps(10).code                                           # "prov_18"
    ref.commodity_for_wfp("Rice (medium quality)")                                   # (beras, its WfpMapping)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pantau.settings import REPO_ROOT

CONTRACTS_DIR = REPO_ROOT / "contracts"
PriceLevel = Literal["producer", "wholesale", "retail"]
Unit = Literal["kg", "litre"]


class ReferenceDataError(ValueError):
    """A reference file is missing, malformed or inconsistent; the message names the file and field."""


class UnknownCodeError(KeyError):
    """A lookup by a code that the reference data does not hold."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- commodities.v1.json ------------------------------------------------------------------------


class ReferencePrice(_Model):
    kind: Literal["het", "hap"]
    quality_grade: str
    price_idr: float
    price_level: PriceLevel
    zone: str | None
    province_codes: tuple[str, ...] | None  # None: applies nationally
    effective_from: date | None
    legal_basis: str
    note: str | None

    def applies_to(self, province_code: str) -> bool:
        return self.province_codes is None or province_code in self.province_codes


class PihpsMapping(_Model):
    commodity_id: int
    commodity_name: str
    quality_grade: str
    price_level: PriceLevel


class BapanasMapping(_Model):
    komoditas_id: int
    name: str
    quality_grade: str
    level_harga_id: int
    price_level: PriceLevel


class WfpMapping(_Model):
    commodity: str  # the WFP/HDX file's commodity name, matched case-insensitively
    quality_grade: str


class ComputedChange(_Model):
    p95_pct: float
    p99_pct: float
    sample_size: int


class PriceChange7d(_Model):
    """Typical absolute 7-day price change in percent: default thresholds for spike detectors."""

    p95_pct: float
    p99_pct: float
    basis: Literal["computed", "documented", "assumption"]
    computed: ComputedChange | None
    note: str | None


class Commodity(_Model):
    code: str
    name_id: str
    name_en: str
    unit: Unit
    quality_grades: tuple[str, ...]
    default_grade: str
    reference_prices: tuple[ReferencePrice, ...]
    pihps: PihpsMapping | None
    bapanas: tuple[BapanasMapping, ...]
    wfp: tuple[WfpMapping, ...]
    price_change_7d: PriceChange7d

    @model_validator(mode="after")
    def _grades_are_declared(self) -> Commodity:
        used = {self.default_grade} | {p.quality_grade for p in self.reference_prices}
        if self.pihps:
            used.add(self.pihps.quality_grade)
        used |= {b.quality_grade for b in self.bapanas}
        used |= {w.quality_grade for w in self.wfp}
        undeclared = sorted(used - set(self.quality_grades))
        if undeclared:
            declared = list(self.quality_grades)
            raise ValueError(f"grades {undeclared} are used but not in quality_grades {declared}")
        return self

    def reference_price(
        self, quality_grade: str, *, province_code: str | None = None, price_level: PriceLevel | None = None
    ) -> ReferencePrice | None:
        """The reference price for a grade (and province / price level when given), or None."""
        for price in self.reference_prices:
            if price.quality_grade != quality_grade:
                continue
            if province_code is not None and not price.applies_to(province_code):
                continue
            if price_level is not None and price.price_level != price_level:
                continue
            return price
        return None


# --- regencies.v1.json --------------------------------------------------------------------------


class RoadToPort(_Model):
    distance_km: float
    normal_road_minutes: int


class Regency(_Model):
    code: str
    name: str
    kind: Literal["kabupaten", "kota"]
    seat: str
    main_commodities: tuple[str, ...]
    to_bakauheni: RoadToPort


# --- markets.v1.json ----------------------------------------------------------------------------


class Range(_Model):
    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Location(_Model):
    lat: float
    lon: float


class Supply(_Model):
    commodity: str
    daily_requirement_kg: int | None
    typical_inflow_kg_per_day: Range | None
    safe_stock_kg: Range | None
    inflow_peak_weekday: (
        Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] | None
    )
    basis: Literal["reported", "assumption"]
    source: str | None


PROVINCE_AVERAGE_PREFIX = "Rata-rata Provinsi "


class Market(_Model):
    code: str
    name: str
    kind: Literal["wholesale", "retail", "province_average", "warehouse"]
    province_code: str
    city: str | None
    location: Location | None
    wfp_market_id: int | None
    pihps_province_id: int | None
    bapanas_province_name: str | None
    supply_destination: bool
    supply: tuple[Supply, ...]
    note: str | None

    @model_validator(mode="after")
    def _destination_has_supply(self) -> Market:
        if self.supply_destination != bool(self.supply):
            raise ValueError("supply_destination must be true exactly when supply lists commodities")
        return self

    @property
    def place_name(self) -> str:
        """What a price here is the price of: the province for a province average ("Lampung"),
        else the market's own name."""
        if self.kind == "province_average":
            return self.name.removeprefix(PROVINCE_AVERAGE_PREFIX)
        return self.name

    def supply_for(self, commodity: str) -> Supply:
        for supply in self.supply:
            if supply.commodity == commodity:
                return supply
        raise UnknownCodeError(f"market {self.code!r} is no supply destination for commodity {commodity!r}")


# --- checkpoints.v1.json ------------------------------------------------------------------------


class Checkpoint(_Model):
    code: str
    name: str
    kind: Literal["port", "ferry_crossing", "road"]
    province_code: str | None
    regency_code: str | None
    sequence: int


class RouteLeg(_Model):
    from_: str = Field(alias="from")  # "origin" or a checkpoint code
    to: str  # a checkpoint code or "destination"
    normal_minutes: int | None  # None: depends on the origin (regencies.v1.json)
    range_minutes: Range | None
    note: str | None


class Route(_Model):
    code: str
    name: str
    origin_province_code: str
    destination_province_code: str
    legs: tuple[RouteLeg, ...]

    @model_validator(mode="after")
    def _legs_chain(self) -> Route:
        for before, after in zip(self.legs, self.legs[1:], strict=False):
            if before.to != after.from_:
                raise ValueError(f"leg to {before.to!r} is followed by a leg from {after.from_!r}")
        return self

    @property
    def checkpoint_codes(self) -> tuple[str, ...]:
        """Checkpoints in travel order (the legs' endpoints without origin and destination)."""
        return tuple(leg.to for leg in self.legs[:-1])


# --- holidays.v1.json ---------------------------------------------------------------------------


class HolidayDate(_Model):
    date: date
    status: Literal["official", "estimated"]
    note: str | None


class Holiday(_Model):
    code: str
    name_id: str
    name_en: str
    demand_window_days: int
    commodities: tuple[str, ...]
    dates: tuple[HolidayDate, ...]


# --- files --------------------------------------------------------------------------------------


class CommoditiesFile(_Model):
    version: str
    notes: tuple[str, ...]
    commodities: tuple[Commodity, ...]


class RegenciesFile(_Model):
    version: str
    province_code: str
    province_name: str
    notes: tuple[str, ...]
    regencies: tuple[Regency, ...]


class MarketsFile(_Model):
    version: str
    notes: tuple[str, ...]
    markets: tuple[Market, ...]


class CheckpointsFile(_Model):
    version: str
    notes: tuple[str, ...]
    checkpoints: tuple[Checkpoint, ...]
    routes: tuple[Route, ...]


class HolidaysFile(_Model):
    version: str
    notes: tuple[str, ...]
    holidays: tuple[Holiday, ...]


REFERENCE_FILES: Mapping[str, type[_Model]] = {
    "commodities.v1.json": CommoditiesFile,
    "regencies.v1.json": RegenciesFile,
    "markets.v1.json": MarketsFile,
    "checkpoints.v1.json": CheckpointsFile,
    "holidays.v1.json": HolidaysFile,
}

_Item = TypeVar("_Item", bound=BaseModel)


def _index(items: Iterable[_Item], key: str, file_stem: str, collection: str) -> dict[object, _Item]:
    index: dict[object, _Item] = {}
    for position, item in enumerate(items):
        value = getattr(item, key)
        if value is None:
            continue
        if value in index:
            where = f"{file_stem}.v1.json: {collection}[{position}].{key}"
            raise ReferenceDataError(f"{where}: duplicate value {value!r}")
        index[value] = item
    return index


@dataclass(frozen=True)
class ReferenceData:
    commodities_file: CommoditiesFile
    regencies_file: RegenciesFile
    markets_file: MarketsFile
    checkpoints_file: CheckpointsFile
    holidays_file: HolidaysFile
    _commodities: dict = field(init=False, repr=False)
    _regencies: dict = field(init=False, repr=False)
    _markets: dict = field(init=False, repr=False)
    _checkpoints: dict = field(init=False, repr=False)
    _routes: dict = field(init=False, repr=False)
    _holidays: dict = field(init=False, repr=False)
    _by_pihps: dict = field(init=False, repr=False)
    _by_bapanas: dict = field(init=False, repr=False)
    _province_markets: dict = field(init=False, repr=False)
    _by_wfp: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        provinces = [m for m in self.markets_file.markets if m.kind == "province_average"]
        indexes = {
            "_commodities": _index(self.commodities, "code", "commodities", "commodities"),
            "_regencies": _index(self.regencies, "code", "regencies", "regencies"),
            "_markets": _index(self.markets, "code", "markets", "markets"),
            "_checkpoints": _index(self.checkpoints, "code", "checkpoints", "checkpoints"),
            "_routes": _index(self.routes, "code", "checkpoints", "routes"),
            "_holidays": _index(self.holidays, "code", "holidays", "holidays"),
            "_by_pihps": _index(provinces, "pihps_province_id", "markets", "province markets"),
            "_by_bapanas": _index(provinces, "bapanas_province_name", "markets", "province markets"),
            "_province_markets": _index(provinces, "province_code", "markets", "province markets"),
        }
        for name, index in indexes.items():
            object.__setattr__(self, name, index)
        object.__setattr__(self, "_by_wfp", self._wfp_index())
        self._check_cross_references()

    def _wfp_index(self) -> dict[str, tuple[Commodity, WfpMapping]]:
        index: dict[str, tuple[Commodity, WfpMapping]] = {}
        for i, commodity in enumerate(self.commodities):
            for j, mapping in enumerate(commodity.wfp):
                name = mapping.commodity.casefold()
                if name in index:
                    raise ReferenceDataError(
                        f"commodities.v1.json: commodities[{i}].wfp[{j}].commodity: WFP name {mapping.commodity!r} "
                        f"is already mapped under commodity {index[name][0].code!r}"
                    )
                index[name] = (commodity, mapping)
        return index

    def _check_cross_references(self) -> None:
        commodities, provinces = self._commodities, self._province_markets
        endpoints = {"origin": None, "destination": None, **self._checkpoints}
        uses: list[tuple[str, str, object, Mapping, str]] = []  # file, field, code, where it must exist, what
        for i, regency in enumerate(self.regencies):
            for code in regency.main_commodities:
                uses.append(("regencies", f"regencies[{i}].main_commodities", code, commodities, "commodity"))
        for i, market in enumerate(self.markets):
            uses.append(
                ("markets", f"markets[{i}].province_code", market.province_code, provinces, "province")
            )
            for j, supply in enumerate(market.supply):
                uses.append(
                    (
                        "markets",
                        f"markets[{i}].supply[{j}].commodity",
                        supply.commodity,
                        commodities,
                        "commodity",
                    )
                )
        for i, holiday in enumerate(self.holidays):
            for code in holiday.commodities:
                uses.append(("holidays", f"holidays[{i}].commodities", code, commodities, "commodity"))
        for i, route in enumerate(self.routes):
            for j, leg in enumerate(route.legs):
                uses.append(
                    ("checkpoints", f"routes[{i}].legs[{j}].from", leg.from_, endpoints, "checkpoint")
                )
                uses.append(("checkpoints", f"routes[{i}].legs[{j}].to", leg.to, endpoints, "checkpoint"))
        for i, commodity in enumerate(self.commodities):
            for j, price in enumerate(commodity.reference_prices):
                where = f"commodities[{i}].reference_prices[{j}].province_codes"
                uses.extend(
                    ("commodities", where, code, provinces, "province") for code in price.province_codes or ()
                )
        for file_stem, where, code, index, what in uses:
            if code not in index:
                raise ReferenceDataError(f"{file_stem}.v1.json: {where}: unknown {what} {code!r}")

    # --- collections ---
    @property
    def commodities(self) -> tuple[Commodity, ...]:
        return self.commodities_file.commodities

    @property
    def regencies(self) -> tuple[Regency, ...]:
        return self.regencies_file.regencies

    @property
    def markets(self) -> tuple[Market, ...]:
        return self.markets_file.markets

    @property
    def checkpoints(self) -> tuple[Checkpoint, ...]:
        return self.checkpoints_file.checkpoints

    @property
    def routes(self) -> tuple[Route, ...]:
        return self.checkpoints_file.routes

    @property
    def holidays(self) -> tuple[Holiday, ...]:
        return self.holidays_file.holidays

    @property
    def supply_destinations(self) -> tuple[Market, ...]:
        return tuple(m for m in self.markets if m.supply_destination)

    # --- lookups (UnknownCodeError, a KeyError, names the code) ---
    def commodity(self, code: str) -> Commodity:
        return _lookup(self._commodities, code, "commodity")

    def regency(self, code: str) -> Regency:
        return _lookup(self._regencies, code, "regency")

    def market(self, code: str) -> Market:
        return _lookup(self._markets, code, "market")

    def checkpoint(self, code: str) -> Checkpoint:
        return _lookup(self._checkpoints, code, "checkpoint")

    def route(self, code: str) -> Route:
        return _lookup(self._routes, code, "route")

    def holiday(self, code: str) -> Holiday:
        return _lookup(self._holidays, code, "holiday")

    def province_market(self, province_code: str) -> Market:
        """The province-average pseudo-market for a BPS province code ("18" -> prov_18)."""
        return _lookup(self._province_markets, province_code, "BPS province code")

    def province_market_for_pihps(self, province_id: int) -> Market:
        """The province-average pseudo-market for a PIHPS Province_ID (10 -> prov_18 Lampung)."""
        return _lookup(self._by_pihps, province_id, "PIHPS Province_ID")

    def province_market_for_bapanas(self, province_name: str) -> Market:
        """The province-average pseudo-market for a Bapanas Panel Harga province name."""
        return _lookup(self._by_bapanas, province_name, "Bapanas province name")

    def commodity_for_pihps(self, commodity_id: int) -> Commodity:
        for commodity in self.commodities:
            if commodity.pihps and commodity.pihps.commodity_id == commodity_id:
                return commodity
        raise UnknownCodeError(f"unknown PIHPS Commodity_ID {commodity_id!r}")

    def commodity_for_wfp(self, name: str) -> tuple[Commodity, WfpMapping]:
        """The commodity and grade a WFP/HDX commodity name means (case-insensitive, outer spaces ignored)."""
        return _lookup(self._by_wfp, name.strip().casefold(), "WFP commodity name")

    @property
    def versions(self) -> dict[str, str]:
        return {
            "commodities": self.commodities_file.version,
            "regencies": self.regencies_file.version,
            "markets": self.markets_file.version,
            "checkpoints": self.checkpoints_file.version,
            "holidays": self.holidays_file.version,
        }


_Value = TypeVar("_Value")


def _lookup(index: Mapping[object, _Value], code: object, what: str) -> _Value:
    try:
        return index[code]
    except KeyError:
        raise UnknownCodeError(f"unknown {what} {code!r}") from None


def _describe(error: Mapping, raw: object) -> str:
    """'markets[3] (code pibc).supply[0].daily_requirement_kg: Input should be ...'."""
    path, code, node = "", None, raw
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        node = node[part] if isinstance(node, dict | list) and _has(node, part) else None
        item_code = node.get("code") if isinstance(node, dict) and isinstance(part, int) else None
        if code is None and isinstance(item_code, str):
            code = item_code
            path += f" (code {code})"
    return f"{path or '<file>'}: {error['msg']}"


def _has(node: dict | list, part: object) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and 0 <= part < len(node)


def _parse(path: Path, model: type[_Model]) -> _Model:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferenceDataError(f"{path}: reference file is missing") from None
    except json.JSONDecodeError as exc:
        raise ReferenceDataError(f"{path}: not valid JSON: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, raw) for e in exc.errors(include_url=False))
        raise ReferenceDataError(f"{path}: {problems}") from None


@lru_cache(maxsize=4)
def load_reference(contracts_dir: Path = CONTRACTS_DIR) -> ReferenceData:
    """Parse and cross-check every reference file once per directory (cached)."""
    reference_dir = Path(contracts_dir) / "reference"
    files = [_parse(reference_dir / name, model) for name, model in REFERENCE_FILES.items()]
    return ReferenceData(*files)  # type: ignore[arg-type]
