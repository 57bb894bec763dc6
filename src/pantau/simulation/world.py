"""The simulated world: what the reference data says (regencies, destinations, checkpoints,
holidays, markets) plus the calibration figures the simulator needs and the contract does not hold
(harvest seasons, price levels, truck sizes). Each figure says where it comes from.

Nothing here is random; `engine.Simulation` draws the randomness from its seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from pantau.detect.config import DEFAULT_INITIAL_STOCK_DAYS
from pantau.reference import Market, ReferenceData, RouteLeg

ROUTE_CODE = "lampung_jakarta"
# Bandar Lampung lists no main commodity: it is the trade hub, so commodities that no Lampung regency
# grows but Jakarta's markets receive from Lampung (shallots, bird's-eye chilli) are consolidated there.
TRADE_HUB_REGENCY = "18.71"

# --- harvests -------------------------------------------------------------------------------------

# Relative harvest per month (Jan..Dec; normalised to a mean of 1 below). Lampung crop calendar:
# rice's main harvest (rendeng) Mar-Apr and the second (gadu) Aug-Sep, lean Nov-Jan; chilli is
# a dry-season crop (low in the rainy months); bananas, pineapples and cassava are harvested all year.
HARVEST_SEASON: Mapping[str, tuple[float, ...]] = {
    "beras": (0.35, 0.7, 1.9, 1.9, 0.9, 0.45, 0.6, 1.35, 1.35, 0.9, 0.4, 0.3),
    "cabai_merah": (0.75, 0.75, 0.85, 0.95, 1.0, 1.1, 1.25, 1.3, 1.25, 1.1, 0.9, 0.8),
    "pisang": (1.0, 0.95, 0.95, 1.0, 1.0, 1.05, 1.05, 1.05, 1.0, 1.0, 0.95, 1.0),
    "nanas": (1.1, 1.0, 0.95, 0.9, 0.9, 1.0, 1.1, 1.1, 1.0, 0.95, 0.95, 1.05),
    "singkong": (0.85, 0.85, 0.9, 1.0, 1.1, 1.15, 1.15, 1.15, 1.05, 1.0, 0.9, 0.85),
}
# Harvest of the Jakarta-bound trade as a multiple of the destinations' requirement (mean over the
# year). Rice is stored at mills, so the year's harvest just covers the year's shipments and the
# stock carries the lean months; perishables must cover demand in their weakest month.
HARVEST_COVER: Mapping[str, float] = {
    "beras": 1.04, "cabai_merah": 1.4, "pisang": 1.12, "nanas": 1.18, "singkong": 1.25,
}  # fmt: skip
# Rice keeps (milled, in store); the rest is perishable: what is left on a harvest's last day is
# shipped anyway (sold off), and a surplus at the market moves on to other markets.
STORABLE = frozenset({"beras"})
MIN_CLEARANCE_KG = 500
PRODUCE_SURPLUS_OUTFLOW = 0.5  # share of the stock above target that leaves each day
# Days from harvest until the produce can ship, and until it must have shipped (rice: drying and
# milling, then stored; perishables: days).
AVAILABILITY_DAYS: Mapping[str, tuple[int, int]] = {
    "beras": (3, 90),
    "cabai_merah": (0, 4),
    "pisang": (1, 6),
    "nanas": (0, 7),
    "singkong": (0, 4),
}
DEFAULT_AVAILABILITY_DAYS = (1, 7)
# Rice production shares of the regencies (BPS paddy production, order of magnitude; regencies that
# list rice but are missing here get the smallest share). Other commodities: equal shares.
RICE_SHARES: Mapping[str, float] = {
    "18.05": 0.22, "18.04": 0.17, "18.03": 0.10, "18.08": 0.10, "18.11": 0.08, "18.02": 0.08,
    "18.10": 0.06, "18.09": 0.06, "18.01": 0.05, "18.13": 0.04, "18.72": 0.04,
}  # fmt: skip
# A regency ships at most this multiple of its share of the normal requirement in a day (mill
# throughput and trucks): what lets a harvest failure in one regency show downstream.
REGENCY_CAPACITY_FACTOR = 1.4
# Stock in Lampung (milled rice at mills) on the day the simulation starts, in days of requirement,
# on top of the seasonal build-up: the stock is lowest at the end of February, before the main harvest.
RICE_MIN_STOCK_DAYS = 12.0

# --- Jakarta destinations ------------------------------------------------------------------------

# Inflow by weekday (Mon..Sun) relative to the requirement: Cipinang receives more on Mondays
# (markets.v1.json inflow_peak_weekday); demand is the same every day, so stock swings weekly.
INFLOW_WEEKDAY_FACTOR = (1.24, 1.02, 0.98, 0.98, 0.98, 0.92, 0.88)
# Traders restore the destination's stock towards its target over this many days.
RESTORE_DAYS = 5.0
# Destination stock target where markets.v1.json gives no safe stock: where the supply detector starts
# its estimate (pantau.detect.config), above the 3 days it takes as the safe minimum, as for rice
# (middle of the safe range). At 3 days the stock would sit on the detector's watch boundary.
DEFAULT_STOCK_DAYS = DEFAULT_INITIAL_STOCK_DAYS
# Arrival hour weights (0..23): trucks reach East Jakarta mostly at night (daytime truck
# restrictions in the city), the wholesale markets trade from the small hours.
ARRIVAL_HOUR_WEIGHTS = (6, 6, 6, 6, 5, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6)
# Warehouse deliveries (food_station_cipinang has no daily requirement): government procurement
# trucks once a week, in tonnes.
WAREHOUSE_DELIVERY_WEEKDAY = 2  # Wednesday
WAREHOUSE_DELIVERY_KG = 200_000

# --- trucks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TruckKind:
    kind: str  # contract vehicle kind
    capacity_kg: float
    min_load_kg: float
    weight: float  # share of the fleet


# Rice moves in 8-30 t trucks; produce in 8-12 t trucks, chilli in reefers.
BULK_FLEET = (
    TruckKind("cdd", 8_000, 7_000, 0.10),
    TruckKind("fuso", 12_000, 10_000, 0.30),
    TruckKind("tronton", 20_000, 15_000, 0.35),
    TruckKind("wingbox", 25_000, 20_000, 0.15),
    TruckKind("trailer", 30_000, 25_000, 0.10),
)
MAX_TRUCK_KG = 30_000
PRODUCE_FLEET = (TruckKind("cdd", 8_000, 6_500, 0.5), TruckKind("fuso", 12_000, 9_000, 0.5))
CHILLED_FLEET = (TruckKind("reefer", 8_000, 5_000, 1.0),)
FLEETS: Mapping[str, tuple[TruckKind, ...]] = {
    "beras": BULK_FLEET,
    "cabai_merah": CHILLED_FLEET,
    "cabai_rawit": CHILLED_FLEET,
}

# The road leg from a regency takes its normal minutes times a factor in this range (traffic,
# loading, rest stops); the other legs use the ranges in checkpoints.v1.json.
ROAD_FACTOR_RANGE = (0.95, 1.35)
# After a ferry closure the queue at Bakauheni clears at this many of the simulated trucks an hour.
FERRY_BACKLOG_TRUCKS_PER_HOUR = 60.0

# --- prices ---------------------------------------------------------------------------------------

# Lampung province average retail price (IDR per kg, per litre for cooking oil): median of PIHPS
# Lampung (Province_ID 10) 2025-12-01..2026-02-12, data/pihps/.
LAMPUNG_RETAIL_BASE: Mapping[str, float] = {
    "beras": 14_750, "daging_ayam": 34_900, "daging_sapi": 130_000, "telur_ayam": 29_150,
    "bawang_merah": 36_900, "bawang_putih": 35_325, "cabai_merah": 43_425, "cabai_rawit": 62_250,
    "minyak_goreng": 19_700, "gula_pasir": 18_150,
}  # fmt: skip
# DKI Jakarta / Lampung price ratio: median of the PIHPS province averages 2022-01..2026-02.
JAKARTA_RATIO: Mapping[str, float] = {
    "beras": 1.118, "daging_ayam": 1.160, "daging_sapi": 1.074, "telur_ayam": 1.031, "bawang_merah": 1.320,
    "bawang_putih": 1.334, "cabai_merah": 1.280, "cabai_rawit": 1.237, "minyak_goreng": 1.052,
    "gula_pasir": 1.065,
}  # fmt: skip
# Medium rice at a market relative to the all-quality province average (PIHPS averages premium in);
# puts Jakarta's medium rice just above the HET of 13,500 and Lampung's below it.
MEDIUM_RICE_FACTOR = 0.83
# Jakarta wholesale price relative to Jakarta retail (wholesale margin at the pasar induk).
WHOLESALE_FACTOR: Mapping[str, float] = {
    "beras": 0.93, "cabai_merah": 0.78, "cabai_rawit": 0.78, "bawang_merah": 0.80,
}  # fmt: skip
# Wholesale prices at Pasar Induk Kramat Jati for produce PIHPS does not track (IDR/kg; assumption,
# order of magnitude of Pasar Jaya's published wholesale prices).
JAKARTA_WHOLESALE_BASE: Mapping[str, float] = {"pisang": 8_000, "nanas": 7_000, "singkong": 4_000}
# Elasticity of price to supply: Lampung prices to the harvest of the last 30 days (relative to
# normal), Jakarta prices to the destination stock (relative to its target).
LAMPUNG_SUPPLY_ELASTICITY: Mapping[str, float] = {"beras": 0.025, "cabai_merah": 0.5}
# Days of harvest the Lampung price looks back over: mills' stocks smooth rice, chilli is sold fresh.
SUPPLY_WINDOW_DAYS: Mapping[str, int] = {"beras": 60, "cabai_merah": 30}
# The months of the base prices above (Dec-Feb): the supply factor is 1 at their harvest level.
CALIBRATION_MONTHS = (12, 1, 2)
JAKARTA_STOCK_ELASTICITY: Mapping[str, float] = {"beras": 0.15}
DEFAULT_STOCK_ELASTICITY = 0.15
SUPPLY_FACTOR_RANGE = (0.85, 1.25)
# Day-to-day noise: AR(1) in log price, sized so that the 7-day change's 95th percentile is the
# commodity's price_change_7d.p95_pct from commodities.v1.json. Most of it is shared by every
# market of the commodity (national moves); the rest is each market's own.
NOISE_PERSISTENCE = 0.9
LOCAL_NOISE_PERSISTENCE = 0.7
LOCAL_NOISE_SHARE = 0.15  # of the variance
# The reference p95 is that of the whole real series (seasons, holidays and supply included); the
# noise takes this share of it, the simulated seasons, holidays and supply the rest.
NOISE_SHARE_OF_P95 = 0.7
# Retail prices are a little higher at weekends (Sat, Sun).
WEEKEND_RETAIL_FACTOR = 1.003
# Peak price uplift on a holiday (reached 3 days before, held to 3 days after, ramped up over the
# holiday's demand_window_days, faded over half of it): the median effect PIHPS shows over 32
# provinces and the holidays of 2022-2025 (the figures pantau.detect.calendar measured), plus 1 %
# for rice before Lebaran; the rest of rice's Lebaran pattern comes from Jakarta's demand and stock.
HOLIDAY_UPLIFT: Mapping[str, Mapping[str, float]] = {
    "idul_fitri": {
        "beras": 0.01, "daging_ayam": 0.03, "daging_sapi": 0.02, "telur_ayam": 0.02, "bawang_merah": 0.10,
        "bawang_putih": 0.04, "gula_pasir": 0.005,
    },
    "ramadan_start": {
        "daging_ayam": 0.02, "telur_ayam": 0.04, "cabai_merah": 0.095, "cabai_rawit": 0.10, "minyak_goreng": 0.01,
        "gula_pasir": 0.01,
    },
    "idul_adha": {"cabai_merah": 0.10, "cabai_rawit": 0.10},
    "natal": {"daging_ayam": 0.045, "telur_ayam": 0.05, "cabai_merah": 0.04, "cabai_rawit": 0.10},
    "tahun_baru": {"daging_ayam": 0.05, "telur_ayam": 0.045, "cabai_merah": 0.03, "cabai_rawit": 0.10},
    "imlek": {"gula_pasir": 0.015},
}  # fmt: skip
# Jakarta demand around Lebaran: up to +12 % in the weeks before, then the city empties (mudik).
LEBARAN_DEMAND_PEAK = 0.12
LEBARAN_MUDIK_FACTOR = 0.6
LEBARAN_MUDIK_DAYS = (-2, 4)
# Local time of day of the daily price observations, by market kind (hours): the wholesale markets
# trade before dawn, retail surveys are morning ones, province averages are published mid-morning.
OBSERVATION_HOUR: Mapping[str, float] = {"wholesale": 5.0, "retail": 8.0, "province_average": 10.0}
PRICE_ROUNDING_IDR = 50


@dataclass(frozen=True)
class PriceSeries:
    """One (commodity, market) series: one price level and grade, so the detectors' key
    {commodity}:{market_code} never mixes levels or grades."""

    commodity: str
    market: Market
    quality_grade: str
    price_level: str  # wholesale | retail
    unit: str
    base_price: float
    side: str  # "jakarta" | "lampung": which supply index moves it

    @property
    def key(self) -> str:
        return f"{self.commodity}:{self.market.code}"


@dataclass(frozen=True)
class Flow:
    """Shipments of one commodity to one Jakarta destination."""

    commodity: str
    destination: str
    requirement_kg: float  # per day
    stock_target_kg: float
    origins: tuple[tuple[str, float], ...]  # (regency code, share)

    @property
    def key(self) -> str:
        return f"{self.commodity}:{self.destination}"


@dataclass(frozen=True)
class Leg:
    to: str  # checkpoint code or "destination"
    normal_minutes: float
    min_minutes: float
    max_minutes: float


class World:
    """Geography and calibration, built once from the reference data."""

    def __init__(self, reference: ReferenceData) -> None:
        self.reference = reference
        self.route = reference.route(ROUTE_CODE)
        self.regencies = {r.code: r for r in reference.regencies}

    @cached_property
    def legs_after_origin(self) -> tuple[Leg, ...]:
        """bakauheni_port -> ferry_crossing -> merak_port -> destination, from checkpoints.v1.json."""
        return tuple(_leg(leg) for leg in self.route.legs[1:])

    @cached_property
    def checkpoint_codes(self) -> tuple[str, ...]:
        return self.route.checkpoint_codes

    def road_minutes(self, regency_code: str) -> float:
        return float(self.regencies[regency_code].to_bakauheni.normal_road_minutes)

    def normal_transit_minutes(self, regency_code: str) -> float:
        return self.road_minutes(regency_code) + sum(leg.normal_minutes for leg in self.legs_after_origin)

    def producers(self, commodity: str) -> tuple[tuple[str, float], ...]:
        """(regency, share) of the regencies that grow `commodity`; the trade hub when none does."""
        growers = [r.code for r in self.reference.regencies if commodity in r.main_commodities]
        if not growers:
            return ((TRADE_HUB_REGENCY, 1.0),)
        if commodity == "beras":
            smallest = min(RICE_SHARES.values())
            weights = {code: RICE_SHARES.get(code, smallest) for code in growers}
        else:
            weights = dict.fromkeys(growers, 1.0)
        total = sum(weights.values())
        return tuple((code, weight / total) for code, weight in weights.items())

    def harvested(self, commodity: str) -> bool:
        """Harvests are simulated for the shipped commodities that Lampung's regencies grow."""
        return commodity in HARVEST_SEASON and self.producers(commodity)[0][0] != TRADE_HUB_REGENCY

    @cached_property
    def flows(self) -> tuple[Flow, ...]:
        """Every destination supply with a daily requirement (markets.v1.json)."""
        flows = []
        for market in self.reference.supply_destinations:
            for supply in market.supply:
                if supply.daily_requirement_kg is None:
                    continue
                requirement = float(supply.daily_requirement_kg)
                if supply.safe_stock_kg is not None:
                    target = (supply.safe_stock_kg.min + supply.safe_stock_kg.max) / 2.0
                else:
                    target = requirement * DEFAULT_STOCK_DAYS
                flows.append(Flow(supply.commodity, market.code, requirement, target, self.producers(supply.commodity)))
        return tuple(flows)

    @cached_property
    def warehouse_destinations(self) -> tuple[tuple[str, str], ...]:
        """(destination, commodity) supplies without a daily requirement: weekly deliveries."""
        return tuple(
            (market.code, supply.commodity)
            for market in self.reference.supply_destinations
            for supply in market.supply
            if supply.daily_requirement_kg is None
        )

    def daily_trucks(self, flow: Flow) -> float:
        """Trucks a normal day brings of `flow` (requirement / the fleet's mean load)."""
        fleet = FLEETS.get(flow.commodity, PRODUCE_FLEET)
        total = sum(kind.weight for kind in fleet)
        mean_load = sum(kind.weight * (kind.min_load_kg + kind.capacity_kg) / 2.0 for kind in fleet) / total
        return flow.requirement_kg / mean_load

    def requirement(self, commodity: str) -> float:
        """Daily requirement of every Jakarta destination for `commodity` (kg)."""
        return sum(flow.requirement_kg for flow in self.flows if flow.commodity == commodity)

    def season_weight(self, commodity: str, day: date) -> float:
        """Harvest weight on `day`, interpolated between mid-months, mean 1 over the year."""
        weights = HARVEST_SEASON[commodity]
        mean = sum(weights) / 12.0
        month = day.month - 1
        mid = date(day.year, day.month, 15)
        offset = (day - mid).days / 30.4
        other = (month + (1 if offset >= 0 else -1)) % 12
        share = abs(offset)
        return ((1.0 - share) * weights[month] + share * weights[other]) / mean

    def calibration_weight(self, commodity: str) -> float:
        """Mean harvest weight of the months the base prices were measured in."""
        weights = HARVEST_SEASON[commodity]
        mean = sum(weights) / 12.0
        return sum(weights[m - 1] for m in CALIBRATION_MONTHS) / len(CALIBRATION_MONTHS) / mean

    @cached_property
    def price_series(self) -> tuple[PriceSeries, ...]:
        """The series the simulator observes every day: Jakarta and Lampung retail markets and
        province averages (the PIHPS commodities), Cipinang wholesale rice, and Kramat Jati wholesale
        for what it receives."""
        ref = self.reference
        series: list[PriceSeries] = []
        lampung_avg = ref.province_market("18")
        jakarta_avg = ref.province_market("31")
        retail = [m for m in ref.markets if m.kind == "retail" and m.province_code in ("18", "31")]
        for commodity in ref.commodities:
            code = commodity.code
            if code not in LAMPUNG_RETAIL_BASE:
                continue
            lampung = LAMPUNG_RETAIL_BASE[code]
            jakarta = lampung * JAKARTA_RATIO[code]
            for market, base, side in ((lampung_avg, lampung, "lampung"), (jakarta_avg, jakarta, "jakarta")):
                series.append(PriceSeries(code, market, commodity.default_grade, "retail", commodity.unit, base, side))
            for market in retail:
                side, base = ("jakarta", jakarta) if market.province_code == "31" else ("lampung", lampung)
                grade = commodity.default_grade
                if code == "beras":
                    grade, base = "medium", base * MEDIUM_RICE_FACTOR
                series.append(PriceSeries(code, market, grade, "retail", commodity.unit, base, side))
        for flow in self.flows:
            commodity = ref.commodity(flow.commodity)
            market = ref.market(flow.destination)
            if flow.commodity in JAKARTA_WHOLESALE_BASE:
                base = JAKARTA_WHOLESALE_BASE[flow.commodity]
            else:
                retail_base = LAMPUNG_RETAIL_BASE[flow.commodity] * JAKARTA_RATIO[flow.commodity]
                if flow.commodity == "beras":
                    retail_base *= MEDIUM_RICE_FACTOR
                base = retail_base * WHOLESALE_FACTOR[flow.commodity]
            grade = "medium" if flow.commodity == "beras" else commodity.default_grade
            series.append(PriceSeries(flow.commodity, market, grade, "wholesale", commodity.unit, base, "jakarta"))
        return tuple(series)

    def holiday_uplift(self, commodity: str, day: date) -> float:
        """Expected price uplift on `day` from the holidays in holidays.v1.json (largest applies)."""
        best = 0.0
        for holiday in self.reference.holidays:
            peak = HOLIDAY_UPLIFT.get(holiday.code, {}).get(commodity)
            if not peak or commodity not in holiday.commodities:
                continue
            for entry in holiday.dates:
                share = _holiday_share((day - entry.date).days, holiday.demand_window_days)
                best = max(best, peak * share)
        return best

    def jakarta_demand_factor(self, day: date) -> float:
        """Jakarta's food demand relative to normal: up before Lebaran, down while the city empties."""
        for entry in self.reference.holiday("idul_fitri").dates:
            offset = (day - entry.date).days
            window = self.reference.holiday("idul_fitri").demand_window_days
            if LEBARAN_MUDIK_DAYS[0] <= offset <= LEBARAN_MUDIK_DAYS[1]:
                return LEBARAN_MUDIK_FACTOR
            if -window <= offset < LEBARAN_MUDIK_DAYS[0]:
                return 1.0 + LEBARAN_DEMAND_PEAK * (offset + window + 1) / (window + LEBARAN_MUDIK_DAYS[0] + 1)
        return 1.0

    def holiday_date(self, code: str, near: date) -> date:
        """The date of holiday `code` nearest after `near` (or the last one listed)."""
        dates = sorted(entry.date for entry in self.reference.holiday(code).dates)
        for candidate in dates:
            if candidate >= near:
                return candidate
        return dates[-1]


def _leg(leg: RouteLeg) -> Leg:
    normal = float(leg.normal_minutes or 0)
    low, high = (leg.range_minutes.min, leg.range_minutes.max) if leg.range_minutes else (normal, normal)
    return Leg(leg.to, normal, float(low), float(high))


def _holiday_share(offset: int, window: int) -> float:
    """0..1: ramp over the window before the holiday, full from 3 days before to 3 after, fade."""
    lead, tail = max(window, 4), max(window // 2, 1)
    if offset < -lead or offset > 3 + tail:
        return 0.0
    if offset < -3:
        return (offset + lead + 1) / (lead - 2)
    if offset <= 3:
        return 1.0
    return 1.0 - (offset - 3) / (tail + 1)
