"""Place codes a subscription may filter on, and the places that contain an alert's place.

A place is a market or destination code (pibc), a checkpoint code (merak_port), a regency code
(18.04) or a BPS province code (31). An alert about a market also matches its province; one about
a regency or checkpoint matches its province too."""

from __future__ import annotations

from datetime import datetime

from pantau.reference import ReferenceData, UnknownCodeError
from pantau.subscriptions.matching import AlertFacts


def province_codes(ref: ReferenceData) -> frozenset[str]:
    return frozenset(m.province_code for m in ref.markets)


def is_known_place(ref: ReferenceData, code: str) -> bool:
    for lookup in (ref.market, ref.checkpoint, ref.regency):
        try:
            lookup(code)
            return True
        except UnknownCodeError:
            continue
    return code in province_codes(ref)


def containing_places(ref: ReferenceData, kind: str, code: str) -> frozenset[str]:
    """The alert place's own code plus the codes of the places that contain it."""
    codes = {code}
    try:
        if kind in ("market", "destination", "province") and not code.isdigit():
            codes.add(ref.market(code).province_code)  # a province alert names its prov_<BPS> market
        elif kind == "checkpoint":
            province = ref.checkpoint(code).province_code
            if province:
                codes.add(province)
        elif kind == "regency":
            codes.add(code.split(".")[0])
    except UnknownCodeError:
        pass  # a place the reference data does not know yet still matches by its own code
    return frozenset(codes)


def places_within(ref: ReferenceData, code: str) -> frozenset[str]:
    """`code` and every place code inside it (a province: its markets, regencies and checkpoints):
    the alert place codes that a filter on `code` selects."""
    codes = {code}
    if code in province_codes(ref):
        codes |= {m.code for m in ref.markets if m.province_code == code}
        codes |= {r.code for r in ref.regencies if r.code.split(".")[0] == code}
        codes |= {c.code for c in ref.checkpoints if c.province_code == code}
    return frozenset(codes)


def alert_facts(event: dict, ref: ReferenceData) -> AlertFacts:
    """Matching facts of a decoded alert lifecycle event in its wire form (a JSON object)."""
    payload = event["payload"]
    place = payload["place"]
    return AlertFacts(
        event_id=str(event["event_id"]),
        event_type=event["event_type"],
        alert_id=str(payload["alert_id"]),
        alert_type=payload["alert_type"],
        severity=payload["severity"],
        previous_severity=payload["previous_severity"],
        commodity=payload["commodity"],
        place_codes=containing_places(ref, place["kind"], place["code"]),
        produced_at=datetime.fromisoformat(event["produced_at"]),
    )
