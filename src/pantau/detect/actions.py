"""Short texts for alerts in Indonesian and English: a title (what happened) and an action text (what
to consider doing), per alert type and severity.

The texts read the evidence the detectors put in a Condition (signals and details); names of
commodities and places come from `Names` (built from the reference data), falling back to codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pantau.detect.conditions import AlertType, Severity, Signal


class AlertTexts(NamedTuple):
    title_id: str
    title_en: str
    action_id: str
    action_en: str


@dataclass(frozen=True)
class Names:
    """Display names: commodity code -> (Indonesian, English); place code -> name."""

    commodities: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    places: Mapping[str, str] = field(default_factory=dict)

    def commodity(self, code: str | None) -> tuple[str, str]:
        if code is None:
            return ("komoditas", "commodity")
        return self.commodities.get(code, (code, code))

    def place(self, code: str) -> str:
        return self.places.get(code, code)

    @classmethod
    def from_reference(cls, ref: Any) -> Names:
        """From `pantau.reference.ReferenceData`: commodities, markets, checkpoints, regencies."""
        commodities = {c.code: (c.name_id.lower(), c.name_en.lower()) for c in ref.commodities}
        places: dict[str, str] = {}
        for market in ref.markets:
            places[market.code] = market.place_name
        for checkpoint in ref.checkpoints:
            places[checkpoint.code] = checkpoint.name
        for regency in ref.regencies:
            places[regency.code] = f"{'Kota' if regency.kind == 'kota' else 'Kabupaten'} {regency.name}"
        return cls(commodities, places)


def _pct(value_pct: float) -> str:
    return f"{round(value_pct):d}%"


def _tonnes(kg: float | None, indonesian: bool) -> str:
    tonnes = (kg or 0.0) / 1000.0
    if tonnes >= 10:
        text = f"{tonnes:,.0f}"
        return text.replace(",", ".") if indonesian else text
    text = f"{tonnes:.1f}"
    return text.replace(".", ",") if indonesian else text


_PRICE_SIGNAL_RANK = {
    "reference_price_excess_pct": 3,
    "change_28d_pct": 2,
    "change_7d_pct": 1,
    "seasonal_deviation_sigma": 0,
}


def _strongest(signals: Sequence[Signal]) -> Signal | None:
    ranked = [s for s in signals if s.severity > Severity.NORMAL and s.name in _PRICE_SIGNAL_RANK]
    if not ranked:
        return None
    return max(ranked, key=lambda s: (s.severity, _PRICE_SIGNAL_RANK[s.name]))


def _price_fact(signal: Signal | None, details: Mapping[str, Any]) -> tuple[str, str]:
    if signal is None:
        return ("naik", "rising")
    if signal.name == "reference_price_excess_pct":
        kind = (signal.window or "het").upper()
        return (f"{_pct(signal.value)} di atas {kind}", f"{_pct(signal.value)} above the {kind}")
    if signal.name in ("change_7d_pct", "change_28d_pct"):
        days = signal.name.split("_")[1].removesuffix("d")
        return (f"naik {_pct(signal.value)} dalam {days} hari", f"up {_pct(signal.value)} in {days} days")
    price, expected = details.get("price_idr"), signal.baseline
    excess = (price / expected - 1.0) * 100.0 if price and expected else 0.0
    return (f"{_pct(excess)} di atas tren musimannya", f"{_pct(excess)} above its seasonal trend")


_PRICE_ACTIONS = {
    (Severity.WATCH, True): ("Pantau harga harian dan stok SPHP.", "Watch daily prices and SPHP stock."),
    (Severity.WATCH, False): ("Pantau harga harian dan pasokan.", "Watch daily prices and supply."),
    (Severity.ALERT, True): (
        "Pertimbangkan menyalurkan stok SPHP.",
        "Consider releasing SPHP price-stabilisation stock.",
    ),
    (Severity.ALERT, False): (
        "Pertimbangkan operasi pasar dan periksa pasokan dari daerah produsen.",
        "Consider a market operation and check supply from the producing regions.",
    ),
    (Severity.CRISIS, True): (
        "Segera salurkan stok SPHP dan koordinasikan dengan Bulog dan TPID.",
        "Release SPHP stock now and coordinate with Bulog and the regional inflation control team (TPID).",
    ),
    (Severity.CRISIS, False): (
        "Segera gelar operasi pasar bersama Bulog dan TPID.",
        "Hold a market operation with Bulog and the regional inflation control team (TPID) now.",
    ),
}
_NO_ACTION = ("Tidak perlu tindakan lebih lanjut.", "No further action needed.")


def describe(
    *,
    resolved: bool,
    alert_type: AlertType,
    severity: Severity,
    commodity: str | None,
    place_code: str,
    signals: Sequence[Signal],
    affected_volume_kg: float | None,
    details: Mapping[str, Any],
    names: Names,
) -> AlertTexts:
    """Title and action text for an alert transition; `resolved` gives the all-clear texts."""
    c_id, c_en = names.commodity(commodity)
    C_en = c_en[:1].upper() + c_en[1:]
    where = names.place(place_code)

    if alert_type is AlertType.PRICE_SPIKE:
        if resolved:
            return AlertTexts(
                f"Harga {c_id} di {where} kembali normal", f"{C_en} price at {where} is back to normal", *_NO_ACTION
            )
        fact_id, fact_en = _price_fact(_strongest(signals), details)
        action = _PRICE_ACTIONS[(max(severity, Severity.WATCH), commodity == "beras")]
        return AlertTexts(f"Harga {c_id} di {where} {fact_id}", f"{C_en} price at {where} is {fact_en}", *action)

    if alert_type is AlertType.PRICE_DISPARITY:
        num = names.place(details.get("numerator", place_code))
        den = names.place(details.get("denominator", "?"))
        if resolved:
            return AlertTexts(
                f"Rasio harga {c_id} {num}/{den} kembali ke kisaran normal",
                f"The {c_en} price ratio {num}/{den} is back in its normal range",
                *_NO_ACTION,
            )
        ratio, low, high = details.get("ratio", 0.0), details.get("low", 0.0), details.get("high", 0.0)
        days = details.get("outside_days", 0)
        ratio_id, band_id = f"{ratio:.2f}".replace(".", ","), f"{low:.2f}-{high:.2f}".replace(".", ",")
        title = (
            f"Harga {c_id} di {num} {ratio_id} kali harga di {den}, di luar kisaran {band_id} selama {days} hari",
            f"{C_en} in {num} costs {ratio:.2f} times the price in {den}, outside {low:.2f}-{high:.2f} for {days} days",
        )
        if ratio > high:
            action = (
                f"Periksa hambatan distribusi dari {den} ke {num}.",
                f"Check for distribution bottlenecks from {den} to {num}.",
            )
        else:
            action = (
                f"Periksa kenaikan harga dan pasokan di {den}.",
                f"Check for a price rise or short supply in {den}.",
            )
        return AlertTexts(*title, *action)

    if alert_type is AlertType.SUPPLY_GAP:
        if resolved:
            return AlertTexts(
                f"Pasokan {c_id} di {where} kembali aman",
                f"{C_en} supply at {where} is back to a safe level",
                *_NO_ACTION,
            )
        cover = details.get("projected_cover_days", 0.0)
        cover_id = f"{cover:.1f}".replace(".", ",")
        title_id = f"Stok {c_id} di {where} diperkirakan cukup untuk {cover_id} hari"
        title_en = f"{C_en} stock at {where} is projected to cover {cover:.1f} days"
        low_inflow = details.get("low_inflow_pct")
        if low_inflow is not None:
            title_id += f"; kedatangan {low_inflow:.0f}% dari biasanya"
            title_en += f"; arrivals are {low_inflow:.0f}% of usual"
        behind = details.get("behind_count", 0)
        if behind:
            kg = details.get("behind_kg", 0.0)
            origins = ", ".join(names.place(o) for o in list(details.get("behind_by_origin_kg", {}))[:3])
            title_id += f"; {behind} pengiriman ({_tonnes(kg, True)} t) dari {origins} terlambat"
            title_en += f"; {behind} shipments ({_tonnes(kg, False)} t) from {origins} are behind"
        if severity >= Severity.CRISIS:
            action = (
                f"Segera lepas stok Bulog atau cadangan pangan pemerintah ke {where}.",
                f"Release Bulog or government food reserve stock to {where} now.",
            )
        elif severity >= Severity.ALERT:
            action = (
                "Percepat pengiriman dari daerah asal dan siapkan pelepasan stok Bulog.",
                "Speed up shipments from the origins and prepare a release of Bulog stock.",
            )
        else:
            action = ("Pantau kedatangan dan stok harian.", "Watch arrivals and daily stock.")
        return AlertTexts(title_id, title_en, *action)

    if alert_type is AlertType.ROUTE_DISRUPTION:
        if resolved:
            return AlertTexts(
                f"Pengiriman di {where} kembali bergerak", f"Shipments at {where} are moving again", *_NO_ACTION
            )
        count = details.get("delayed_count", 0)
        return AlertTexts(
            f"{count} pengiriman ({_tonnes(affected_volume_kg, True)} t) tertahan di {where}",
            f"{count} shipments ({_tonnes(affected_volume_kg, False)} t) are held up at {where}",
            "Koordinasikan jadwal kapal tambahan dengan ASDP dan beri tahu penerima.",
            "Coordinate extra ferry departures with ASDP and inform the receivers.",
        )

    if alert_type is AlertType.HARVEST_UNSHIPPED:
        if resolved:
            return AlertTexts(
                f"Panen {c_id} di {where} sudah terkirim atau tidak lagi tersedia",
                f"The {c_en} harvest in {where} has been shipped or is no longer available",
                *_NO_ACTION,
            )
        return AlertTexts(
            f"{_tonnes(affected_volume_kg, True)} t panen {c_id} di {where} belum dikirim dalam masa tersedianya",
            f"{_tonnes(affected_volume_kg, False)} t of harvested {c_en} in {where} has not been shipped "
            "within its availability window",
            "Hubungkan petani dengan pembeli atau Bulog untuk penyerapan.",
            "Connect the farmers with buyers or Bulog to take up the harvest.",
        )
    raise ValueError(f"no texts for alert type {alert_type!r}")
