"""What a detector concludes about one subject at one moment; the alert lifecycle turns a stream of
these into AlertOpened / AlertUpdated / AlertResolved events."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that comparisons read naturally: Severity.ALERT > Severity.WATCH."""

    NORMAL = 0
    WATCH = 1
    ALERT = 2
    CRISIS = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class AlertType(enum.StrEnum):
    PRICE_SPIKE = "price_spike"
    PRICE_DISPARITY = "price_disparity"
    SUPPLY_GAP = "supply_gap"
    ROUTE_DISRUPTION = "route_disruption"
    HARVEST_UNSHIPPED = "harvest_unshipped"


class PlaceKind(enum.StrEnum):
    MARKET = "market"
    PROVINCE = "province"
    DESTINATION = "destination"
    CHECKPOINT = "checkpoint"
    REGENCY = "regency"


@dataclass(frozen=True, slots=True)
class Place:
    kind: PlaceKind
    code: str


# Signal and Condition are not frozen: a frozen dataclass's __init__ sets each field through
# object.__setattr__ (~2 us per instance), a sixth of the price detector's step. Treat them as values.
@dataclass(slots=True)
class Signal:
    """One piece of evidence: a measured value against its baseline or threshold over a window."""

    name: str
    value: float
    threshold: float | None = None
    baseline: float | None = None
    window: str | None = None
    severity: Severity = Severity.NORMAL
    note: str | None = None  # e.g. why a signal could not be computed yet

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "baseline": self.baseline,
            "window": self.window,
            "severity": self.severity.label,
            "note": self.note,
        }


@dataclass(slots=True)
class Condition:
    alert_type: AlertType
    subject: str  # one open alert per subject, e.g. "price_spike:beras:pibc"
    severity: Severity
    observed_at: datetime  # event time of the observation that produced it
    commodity: str | None
    place: Place
    signals: tuple[Signal, ...] = ()
    affected_volume_kg: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An observation a detector refused; the processor dead-letters it with `reason`."""

    reason: str


@dataclass(frozen=True, slots=True)
class Invalid(Rejected):
    """Impossible input (zero or negative price, 20x off its recent median, unknown commodity)."""


@dataclass(frozen=True, slots=True)
class TooLate(Rejected):
    """Older than the detector's lateness tolerance: its day is already final."""
