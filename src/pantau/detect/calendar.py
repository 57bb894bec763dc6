"""Holiday calendar: how much higher than usual a commodity's price is expected to be on a day.

Holidays (Lebaran, Ramadan, Natal, ...) raise demand and prices for some commodities every year;
the price detector divides prices by (1 + expected uplift) so such rises are expected rather than
alerted. Dates and demand windows come from contracts/reference/holidays.v1.json; the size of the
effect is not in the contract, so DEFAULT_HOLIDAY_UPLIFT holds measured defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from pantau.detect.timebase import date_to_day

# Median over 32 PIHPS provinces (all but Lampung and DKI Jakarta, which the replay evaluates) and the
# holidays of 2022-2025 of price(H-3..H) / price(H-45..H-30) - 1, rounded, negative effects set to 0
# and capped at 10 %: larger figures (chilli around Natal and Idul Adha) are mostly the season, which
# the seasonal factor learns, not the holiday.
DEFAULT_HOLIDAY_UPLIFT: Mapping[str, Mapping[str, float]] = {
    "idul_fitri": {
        "daging_ayam": 0.03,
        "daging_sapi": 0.02,
        "telur_ayam": 0.02,
        "bawang_merah": 0.10,
        "bawang_putih": 0.04,
        "gula_pasir": 0.005,
    },
    "ramadan_start": {
        "daging_ayam": 0.02,
        "telur_ayam": 0.04,
        "cabai_merah": 0.095,
        "cabai_rawit": 0.10,
        "minyak_goreng": 0.01,
        "gula_pasir": 0.01,
    },
    "idul_adha": {"cabai_merah": 0.10, "cabai_rawit": 0.10},
    "natal": {"daging_ayam": 0.045, "telur_ayam": 0.05, "cabai_merah": 0.04, "cabai_rawit": 0.10},
    "tahun_baru": {"daging_ayam": 0.05, "telur_ayam": 0.045, "cabai_merah": 0.03, "cabai_rawit": 0.10},
    "imlek": {"gula_pasir": 0.015},
}

# Full effect from PEAK_FROM days before the holiday to PEAK_UNTIL days after it.
PEAK_FROM = -3
PEAK_UNTIL = 3


@dataclass(frozen=True, slots=True)
class HolidayWindow:
    """One holiday on one date: prices of `uplift`'s commodities rise over `demand_window_days`."""

    code: str
    on: date
    demand_window_days: int
    uplift: Mapping[str, float]


class HolidayCalendar:
    """Expected uplift per (commodity, WIB day), precomputed so a lookup is one dict access.

    The effect ramps up linearly over the demand window, holds from PEAK_FROM to PEAK_UNTIL days
    around the holiday and fades over half the window afterwards. Overlapping holidays (Natal and
    Tahun Baru) take the larger effect, not the sum.
    """

    __slots__ = ("_by_key", "_by_commodity")

    def __init__(self, windows: Iterable[HolidayWindow] = ()) -> None:
        by_key: dict[tuple[str, int], tuple[float, str]] = {}
        for window in windows:
            center = date_to_day(window.on)
            lead = max(window.demand_window_days, -PEAK_FROM + 1)
            tail = max(window.demand_window_days // 2, 1)
            for offset in range(-lead, PEAK_UNTIL + tail + 1):
                if offset < PEAK_FROM:
                    share = (offset + lead) / (lead + PEAK_FROM)
                elif offset <= PEAK_UNTIL:
                    share = 1.0
                else:
                    share = 1.0 - (offset - PEAK_UNTIL) / (tail + 1)
                if share <= 0.0:
                    continue
                for commodity, peak in window.uplift.items():
                    value = peak * share
                    key = (commodity, center + offset)
                    if value > 0.0 and value > by_key.get(key, (0.0, ""))[0]:
                        by_key[key] = (value, window.code)
        self._by_key = by_key
        by_commodity: dict[str, dict[int, float]] = {}
        for (commodity, day), (value, _) in by_key.items():
            by_commodity.setdefault(commodity, {})[day] = value
        self._by_commodity = by_commodity

    def affects(self, commodity: str) -> bool:
        """False when no holiday ever changes this commodity's price (lets callers skip lookups)."""
        return commodity in self._by_commodity

    def uplifts(self, commodity: str) -> Mapping[int, float] | None:
        """Day -> expected uplift for one commodity (days without one are absent), None if never affected."""
        return self._by_commodity.get(commodity)

    def uplift(self, commodity: str, day: int) -> float:
        """Expected fractional price rise on `day` (WIB days since epoch), 0.0 outside holidays."""
        found = self._by_key.get((commodity, day))
        return found[0] if found else 0.0

    def holiday(self, commodity: str, day: int) -> tuple[float, str] | None:
        """(uplift, holiday code) when a holiday effect applies, for evidence."""
        return self._by_key.get((commodity, day))

    @classmethod
    def from_reference(
        cls, holidays: Iterable[object], uplift: Mapping[str, Mapping[str, float]] = DEFAULT_HOLIDAY_UPLIFT
    ) -> HolidayCalendar:
        """From `pantau.reference` Holiday models (code, demand_window_days, commodities, dates).

        Only the holiday's listed commodities get an effect, sized by `uplift[code][commodity]`.
        """
        windows = []
        for holiday in holidays:
            effects = uplift.get(holiday.code, {})  # type: ignore[attr-defined]
            listed = {c: effects[c] for c in holiday.commodities if c in effects}  # type: ignore[attr-defined]
            for entry in holiday.dates:  # type: ignore[attr-defined]
                windows.append(HolidayWindow(holiday.code, entry.date, holiday.demand_window_days, listed))  # type: ignore[attr-defined]
        return cls(windows)


NO_HOLIDAYS = HolidayCalendar()
