"""The CSV layouts the importer reads, each detected from its header, and the row parsers.

- PIHPS (Bank Indonesia): Date_Scraped, Date_Param, Commodity_ID, Commodity_Name, Province_ID,
  Province_Name, Price, Price_Type; province averages, IDR per kg (per litre for cooking oil).
- Bapanas Panel Harga: Tanggal (DD/MM/YYYY), Komoditas, Provinsi, Harga; an empty Harga means the
  province did not report that day (skipped, not an error).
- WFP/HDX food prices: date, admin1, admin2, market, market_id, latitude, longitude, category,
  commodity, unit, priceflag, pricetype, currency, price, usdprice; markets by WFP market_id.

A row parser returns an Observation, a Rejection (with the reason) or a Skipped; it never raises
on bad input. Codes come from the reference data (contracts/reference/), never from here: PIHPS
Commodity_ID, Bapanas Komoditas and WFP commodity names are mapped in commodities.v1.json.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pantau.importers.records import Observation, Rejection, Skipped
from pantau.reference import Market, ReferenceData, UnknownCodeError

RowResult = Observation | Rejection | Skipped

PIHPS_COLUMNS = (
    "Date_Scraped", "Date_Param", "Commodity_ID", "Commodity_Name", "Province_ID", "Province_Name", "Price",
    "Price_Type",
)  # fmt: skip
BAPANAS_COLUMNS = ("Tanggal", "Komoditas", "Provinsi", "Harga")
WFP_COLUMNS = (
    "date", "admin1", "admin2", "market", "market_id", "latitude", "longitude", "category", "commodity", "unit",
    "priceflag", "pricetype", "currency", "price", "usdprice",
)  # fmt: skip

# PIHPS Price_Type: 1 traditional market (retail), 3 wholesale (pedagang besar), 4 producer. 2 (modern
# market) is another retail series of the same place; the contract keeps one retail series per market.
PIHPS_PRICE_TYPES: Mapping[str, str] = {"1": "retail", "3": "wholesale", "4": "producer"}
WFP_UNITS: Mapping[str, str] = {"kg": "kg", "l": "litre", "litre": "litre", "liter": "litre"}
WFP_PRICE_TYPES: Mapping[str, str] = {
    "retail": "retail",
    "wholesale": "wholesale",
    "producer": "producer",
    "farm gate": "producer",
}
WFP_PRICE_FLAGS = ("actual", "aggregate")  # "forecast" and others are not observations


@dataclass(frozen=True)
class WfpMarket:
    market_id: int
    name: str
    admin1: str


class UnknownLayout(ValueError):
    """A header that matches none of the layouts; the message lists what each layout expects."""


@dataclass(frozen=True)
class Layout:
    name: str  # pihps | bapanas | wfp
    columns: tuple[str, ...]
    province_column: str
    parse: Callable[[int, Mapping[str, str], ReferenceData, Mapping[int, WfpMarket]], RowResult]

    @property
    def source(self) -> str:
        return f"importer.{self.name}"


def detect_layout(header: Sequence[str]) -> Layout:
    """The layout whose columns the header holds (in any order; extra columns are ignored)."""
    present = {column.strip().lstrip("\ufeff") for column in header}
    for layout in LAYOUTS:
        if set(layout.columns) <= present:
            return layout
    expected = "; ".join(f"{layout.name}: {', '.join(layout.columns)}" for layout in LAYOUTS)
    raise UnknownLayout(f"header {list(header)} matches no known layout ({expected})")


# --- field parsers: each returns the value or raises _Bad with the reason ------------------------


class _Bad(ValueError):
    pass


def _price(raw: str | None, column: str) -> float:
    text = (raw or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"{column} {text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise _Bad(f"{column} {text!r} is not a positive price")
    if value > 100_000_000:
        raise _Bad(f"{column} {text!r} is above 100,000,000 IDR, not a plausible price")
    return value


def _iso_date(raw: str | None, column: str) -> date:
    text = (raw or "").strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else _raise(text)
    except ValueError:
        raise _Bad(f"{column} {text!r} is not a date YYYY-MM-DD") from None


def _raise(text: str) -> date:
    raise ValueError(text)


def _int(raw: str | None, column: str) -> int:
    text = (raw or "").strip()
    try:
        return int(text)
    except ValueError:
        try:
            value = float(text)  # "10.0" in some exports
        except ValueError:
            raise _Bad(f"{column} {text!r} is not a whole number") from None
        if not value.is_integer():
            raise _Bad(f"{column} {text!r} is not a whole number") from None
        return int(value)


def _observation(
    line: int, source: str, ref: ReferenceData, commodity: str, grade: str, level: str, market: Market,
    price: float, observed_on: date, unit: str | None = None,
) -> Observation:  # fmt: skip
    expected_unit = ref.commodity(commodity).unit
    if unit is not None and unit != expected_unit:
        raise _Bad(f"unit {unit} does not match {commodity}'s unit {expected_unit} (commodities.v1.json)")
    return Observation(
        line=line, source=source, commodity=commodity, quality_grade=grade, price_level=level,
        market_code=market.code, province_code=market.province_code, unit=expected_unit, price_idr=price,
        observed_on=observed_on,
    )  # fmt: skip


def _guard(parse: Callable[..., RowResult]) -> Callable[..., RowResult]:
    """Turn the field parsers' _Bad (and unknown codes) into a Rejection with the line."""

    def guarded(line: int, row: Mapping[str, str], ref: ReferenceData, markets: Mapping[int, WfpMarket]) -> RowResult:
        try:
            return parse(line, row, ref, markets)
        except _Bad as exc:
            return Rejection(line, str(exc))
        except UnknownCodeError as exc:
            return Rejection(line, str(exc))

    guarded.__name__ = parse.__name__
    return guarded


# --- PIHPS -------------------------------------------------------------------------------------


@_guard
def parse_pihps(line: int, row: Mapping[str, str], ref: ReferenceData, _markets: Mapping[int, WfpMarket]) -> RowResult:
    observed_on = _iso_date(row.get("Date_Param"), "Date_Param")
    commodity = ref.commodity_for_pihps(_int(row.get("Commodity_ID"), "Commodity_ID"))
    market = ref.province_market_for_pihps(_int(row.get("Province_ID"), "Province_ID"))
    price_type = (row.get("Price_Type") or "").strip().removesuffix(".0")
    level = PIHPS_PRICE_TYPES.get(price_type)
    if level is None:
        raise _Bad(f"Price_Type {price_type!r} is not one of {', '.join(PIHPS_PRICE_TYPES)} (1 traditional market)")
    price = _price(row.get("Price"), "Price")
    grade = commodity.pihps.quality_grade if commodity.pihps else commodity.default_grade
    return _observation(line, "importer.pihps", ref, commodity.code, grade, level, market, price, observed_on)


# --- Bapanas Panel Harga -----------------------------------------------------------------------


@_guard
def parse_bapanas(
    line: int, row: Mapping[str, str], ref: ReferenceData, _markets: Mapping[int, WfpMarket]
) -> RowResult:
    text = (row.get("Tanggal") or "").strip()
    try:
        observed_on = datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        raise _Bad(f"Tanggal {text!r} is not a date DD/MM/YYYY") from None
    name = (row.get("Komoditas") or "").strip()
    mapping = next(((c, b) for c in ref.commodities for b in c.bapanas if b.name.casefold() == name.casefold()), None)
    if mapping is None:
        raise _Bad(f"Komoditas {name!r} is not a Bapanas commodity in commodities.v1.json")
    commodity, bapanas = mapping
    market = ref.province_market_for_bapanas((row.get("Provinsi") or "").strip())
    if not (row.get("Harga") or "").strip():
        return Skipped(line, "no price reported (Harga empty)")
    price = _price(row.get("Harga"), "Harga")
    return _observation(
        line, "importer.bapanas", ref, commodity.code, bapanas.quality_grade, bapanas.price_level, market, price,
        observed_on,
    )  # fmt: skip


# --- WFP / HDX ---------------------------------------------------------------------------------


@_guard
def parse_wfp(line: int, row: Mapping[str, str], ref: ReferenceData, markets: Mapping[int, WfpMarket]) -> RowResult:
    observed_on = _iso_date(row.get("date"), "date")
    market_id = _int(row.get("market_id"), "market_id")
    market = next((m for m in ref.markets if m.wfp_market_id == market_id), None)
    if market is None:
        known = markets.get(market_id)
        where = f" ({known.name}, {known.admin1})" if known else " (not in data/wfp/wfp_markets_idn.csv either)"
        raise _Bad(f"WFP market_id {market_id}{where} is not in contracts/reference/markets.v1.json")
    name = (row.get("commodity") or "").strip()
    try:
        commodity, wfp = ref.commodity_for_wfp(name)
    except UnknownCodeError:
        raise _Bad(f"WFP commodity {name!r} is not mapped to a commodity (wfp in commodities.v1.json)") from None
    unit_text = (row.get("unit") or "").strip()
    unit = WFP_UNITS.get(unit_text.casefold())
    if unit is None:
        raise _Bad(f"unit {unit_text!r} is not a per-kg or per-litre unit")
    flag = (row.get("priceflag") or "").strip().casefold()
    if flag not in WFP_PRICE_FLAGS:
        raise _Bad(f"priceflag {flag!r} is not an observation ({' or '.join(WFP_PRICE_FLAGS)})")
    price_type = (row.get("pricetype") or "").strip().casefold()
    level = WFP_PRICE_TYPES.get(price_type)
    if level is None:
        raise _Bad(f"pricetype {price_type!r} is not one of {', '.join(WFP_PRICE_TYPES)}")
    currency = (row.get("currency") or "").strip()
    if currency != "IDR":
        raise _Bad(f"currency {currency!r} is not IDR")
    price = _price(row.get("price"), "price")
    return _observation(
        line, "importer.wfp", ref, commodity.code, wfp.quality_grade, level, market, price, observed_on, unit
    )


LAYOUTS = (
    Layout("pihps", PIHPS_COLUMNS, "Province_Name", parse_pihps),
    Layout("bapanas", BAPANAS_COLUMNS, "Provinsi", parse_bapanas),
    Layout("wfp", WFP_COLUMNS, "admin1", parse_wfp),
)
