"""Short texts for alerts, in Indonesian and English: what happened and what to consider doing.

The texts read the evidence the detectors put in a Condition (signals and details); names of
commodities and places come from `Names` (built from the reference data), falling back to codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pantau.detect.conditions import AlertType, Place, Severity, Signal


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
            places[market.code] = market.name.removesuffix(" (province average)")
        for checkpoint in ref.checkpoints:
            places[checkpoint.code] = checkpoint.name
        for regency in ref.regencies:
            places[regency.code] = f"{'Kota' if regency.kind == 'kota' else 'Kabupaten'} {regency.name}"
        return cls(commodities, places)


def _pct(fraction: float) -> str:
    return f"{round(fraction * 100):d}%"


def _tonnes(kg: float | None) -> str:
    tonnes = (kg or 0.0) / 1000.0
    return f"{tonnes:,.0f}".replace(",", ".") if tonnes >= 10 else f"{tonnes:.1f}".replace(".", ",")


def _tonnes_en(kg: float | None) -> str:
    tonnes = (kg or 0.0) / 1000.0
    return f"{tonnes:,.0f}" if tonnes >= 10 else f"{tonnes:.1f}"


def _strongest(signals: Sequence[Signal]) -> Signal | None:
    order = {"reference_price_breach": 3, "change_28d": 2, "change_7d": 1, "seasonal_deviation": 0}
    ranked = [s for s in signals if s.severity > Severity.NORMAL and s.name in order]
    if not ranked:
        return None
    return max(ranked, key=lambda s: (s.severity, order[s.name]))


def _price_fact(signal: Signal | None, details: Mapping[str, Any]) -> tuple[str, str]:
    if signal is None:
        return ("naik", "rising")
    if signal.name == "reference_price_breach":
        kind = (signal.window or "het").upper()
        return (f"{_pct(signal.value)} di atas {kind}", f"{_pct(signal.value)} above the {kind}")
    if signal.name in ("change_7d", "change_28d"):
        days = signal.name.removeprefix("change_").removesuffix("d")
        return (f"naik {_pct(signal.value)} dalam {days} hari", f"up {_pct(signal.value)} in {days} days")
    price, expected = details.get("price_idr"), signal.baseline
    excess = price / expected - 1.0 if price and expected else 0.0
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


def describe(
    *,
    resolved: bool,
    alert_type: AlertType,
    severity: Severity,
    commodity: str | None,
    place: Place,
    signals: Sequence[Signal],
    affected_volume_kg: float | None,
    details: Mapping[str, Any],
    names: Names,
) -> tuple[str, str]:
    """(Indonesian, English) text for an alert transition."""
    c_id, c_en = names.commodity(commodity)
    where = names.place(place.code)
    if alert_type is AlertType.PRICE_SPIKE:
        if resolved:
            return (
                f"Harga {c_id} di {where} kembali normal.",
                f"{c_en.capitalize()} price at {where} is back to normal.",
            )
        fact_id, fact_en = _price_fact(_strongest(signals), details)
        act_id, act_en = _PRICE_ACTIONS[(max(severity, Severity.WATCH), commodity == "beras")]
        return (
            f"Harga {c_id} di {where} {fact_id}. {act_id}",
            f"{c_en.capitalize()} price at {where} is {fact_en}. {act_en}",
        )

    if alert_type is AlertType.PRICE_DISPARITY:
        num, den = (
            names.place(details.get("numerator", place.code)),
            names.place(details.get("denominator", "?")),
        )
        if resolved:
            return (
                f"Rasio harga {c_id} {num}/{den} kembali ke kisaran normal.",
                f"The {c_en} price ratio {num}/{den} is back in its normal range.",
            )
        ratio, low, high = details.get("ratio", 0.0), details.get("low", 0.0), details.get("high", 0.0)
        days = details.get("outside_days", 0)
        head_id = (
            f"Harga {c_id} di {num} {ratio:.2f} kali harga di {den}, di luar kisaran normal "
            f"{low:.2f}-{high:.2f} selama {days} hari."
        )
        head_en = (
            f"{c_en.capitalize()} in {num} costs {ratio:.2f} times the price in {den}, outside its normal "
            f"{low:.2f}-{high:.2f} range for {days} days."
        )
        if ratio > high:
            act = (
                f"Periksa hambatan distribusi dari {den} ke {num}.",
                f"Check for distribution bottlenecks from {den} to {num}.",
            )
        else:
            act = (
                f"Periksa kenaikan harga dan pasokan di {den}.",
                f"Check for a price rise or short supply in {den}.",
            )
        return (f"{head_id} {act[0]}", f"{head_en} {act[1]}")

    if alert_type is AlertType.SUPPLY_GAP:
        if resolved:
            return (
                f"Pasokan {c_id} di {where} kembali aman.",
                f"{c_en.capitalize()} supply at {where} is back to a safe level.",
            )
        cover = details.get("projected_cover_days", 0.0)
        behind = details.get("behind_count", 0)
        origins = ", ".join(names.place(o) for o in list(details.get("behind_by_origin_kg", {}))[:3])
        cover_id = f"{cover:.1f}".replace(".", ",")
        head_id = f"Stok {c_id} di {where} diperkirakan cukup untuk {cover_id} hari"
        head_en = f"{c_en.capitalize()} stock at {where} is projected to cover {cover:.1f} days"
        if behind:
            kg = details.get("behind_kg", 0.0)
            head_id += f"; {behind} pengiriman ({_tonnes(kg)} t) terlambat dari {origins}"
            head_en += f"; {behind} shipments ({_tonnes_en(kg)} t) from {origins} are behind"
        if severity >= Severity.CRISIS:
            act = (
                f"Segera lepas stok Bulog atau cadangan pangan pemerintah ke {where}.",
                f"Release Bulog or government food reserve stock to {where} now.",
            )
        elif severity >= Severity.ALERT:
            act = (
                "Percepat pengiriman dari daerah asal dan siapkan pelepasan stok Bulog.",
                "Speed up shipments from the origins and prepare a release of Bulog stock.",
            )
        else:
            act = ("Pantau kedatangan dan stok harian.", "Watch arrivals and daily stock.")
        return (f"{head_id}. {act[0]}", f"{head_en}. {act[1]}")

    if alert_type is AlertType.ROUTE_DISRUPTION:
        if resolved:
            return (f"Pengiriman di {where} kembali bergerak.", f"Shipments at {where} are moving again.")
        count = details.get("delayed_count", 0)
        return (
            f"{count} pengiriman ({_tonnes(affected_volume_kg)} t) tertahan di {where}. "
            "Koordinasikan jadwal kapal tambahan dengan ASDP dan beri tahu penerima.",
            f"{count} shipments ({_tonnes_en(affected_volume_kg)} t) are held up at {where}. "
            "Coordinate extra ferry departures with ASDP and inform the receivers.",
        )

    if alert_type is AlertType.HARVEST_UNSHIPPED:
        if resolved:
            return (
                f"Panen {c_id} di {where} sudah terkirim atau tidak lagi tersedia.",
                f"The {c_en} harvest in {where} has been shipped or is no longer available.",
            )
        return (
            f"{_tonnes(affected_volume_kg)} t panen {c_id} di {where} belum dikirim dalam masa "
            "ketersediaannya. Hubungkan petani dengan pembeli atau Bulog untuk penyerapan.",
            f"{_tonnes_en(affected_volume_kg)} t of harvested {c_en} in {where} has not been shipped "
            "within its availability window. Connect the farmers with buyers or Bulog to take up the harvest.",
        )
    raise ValueError(f"no texts for alert type {alert_type!r}")
