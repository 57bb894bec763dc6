"""Which alert lifecycle events a subscription receives.

A subscription filters on alert type, commodity, place and minimum severity (an empty filter
accepts everything). An event is delivered when it passes the filters and the alert is, or just
was, at or above the minimum severity. Once a subscription has been told about an alert it gets
every later event of that alert (downgrades and the resolution), so a receiver never keeps an
alert open that we closed. A subscription receives only events produced after it was created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

SEVERITIES = ("normal", "watch", "alert", "crisis")
ALERT_SEVERITIES = SEVERITIES[1:]
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    try:
        return _RANK[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}; one of {list(SEVERITIES)}") from None


@dataclass(frozen=True)
class AlertFacts:
    """What matching needs from an alert lifecycle event (AlertOpened/Updated/Resolved)."""

    event_id: str
    event_type: str
    alert_id: str
    alert_type: str
    severity: str
    previous_severity: str | None
    commodity: str | None
    # The alert's place code plus the codes that contain it (a market's province), so a filter on
    # province "31" receives alerts about Jakarta's markets.
    place_codes: frozenset[str]
    produced_at: datetime


@dataclass(frozen=True)
class SubscriptionFilter:
    alert_types: frozenset[str] = frozenset()
    commodities: frozenset[str] = frozenset()
    places: frozenset[str] = frozenset()
    min_severity: str = "watch"

    def __post_init__(self) -> None:
        if self.min_severity not in ALERT_SEVERITIES:
            choices = list(ALERT_SEVERITIES)
            raise ValueError(f"min_severity must be one of {choices}, not {self.min_severity!r}")

    def accepts_subject(self, alert: AlertFacts) -> bool:
        if self.alert_types and alert.alert_type not in self.alert_types:
            return False
        if self.commodities and alert.commodity not in self.commodities:
            return False
        if self.places and not (self.places & alert.place_codes):
            return False
        return True

    def severe_enough(self, alert: AlertFacts) -> bool:
        floor = severity_rank(self.min_severity)
        now = severity_rank(alert.severity)
        before = severity_rank(alert.previous_severity) if alert.previous_severity else 0
        return max(now, before) >= floor


def matches(
    subscription: SubscriptionFilter,
    alert: AlertFacts,
    *,
    subscribed_at: datetime,
    already_notified: bool = False,
) -> bool:
    """Deliver this event to this subscription? `already_notified`: an earlier event of the same
    alert was delivered (or queued) to it."""
    if alert.produced_at < subscribed_at:
        return False
    if not subscription.accepts_subject(alert):
        return False
    return already_notified or subscription.severe_enough(alert)


def place_codes(code: str, containing: Iterable[str] = ()) -> frozenset[str]:
    return frozenset([code, *containing])
