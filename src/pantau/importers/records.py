"""What a parsed row becomes: an observation (a future PriceObserved), a rejection with its reason,
or a row skipped on purpose (no price that day, or a province not asked for)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from pantau.contracts import WIB, PriceObserved, PriceObservedEvent, new_event, stable_event_id

# The files give a date; PIHPS and Bapanas publish a morning survey, WFP a monthly figure. One time
# for all keeps one observation per series and day. The only copy: the detectors' replay of the
# PIHPS series (pantau.detect.evaluate) imports it, so its events fall where the importer's do.
OBSERVED_AT = time(10, 0)  # WIB


def observed_at(day: date) -> datetime:
    """The event time of a price its source gives by date only: OBSERVED_AT (WIB) on that day."""
    return datetime.combine(day, OBSERVED_AT, tzinfo=WIB)


@dataclass(frozen=True, slots=True)
class Observation:
    line: int
    source: str  # importer.pihps | importer.bapanas | importer.wfp
    commodity: str
    quality_grade: str
    price_level: str
    market_code: str
    province_code: str
    unit: str
    price_idr: float
    observed_on: date

    @property
    def occurred_at(self) -> datetime:
        return observed_at(self.observed_on)

    @property
    def event_id(self) -> str:
        """Deterministic: re-importing the same observation gives the same id (consumers drop it)."""
        return stable_event_id(
            self.source, self.market_code, self.commodity, self.quality_grade, self.price_level, self.observed_on
        )

    def to_event(self, run_id: str | None = None) -> PriceObservedEvent:
        """The PriceObserved event; correlation_id is the import run, so one run can be counted."""
        per_kg, per_litre = (self.price_idr, None) if self.unit == "kg" else (None, self.price_idr)
        payload = PriceObserved(
            commodity=self.commodity,
            quality_grade=self.quality_grade,
            market_code=self.market_code,
            province_code=self.province_code,
            price_level=self.price_level,
            unit=self.unit,
            price_idr_per_kg=per_kg,
            price_idr_per_litre=per_litre,
        )
        return new_event(  # type: ignore[return-value]
            payload, occurred_at=self.occurred_at, source=self.source, correlation_id=run_id, event_id=self.event_id
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str

    def describe(self, path: object) -> str:
        """`file:line: reason`, the way compilers report, so editors can jump to it."""
        return f"{path}:{self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int
    reason: str
