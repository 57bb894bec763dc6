"""Event time as whole WIB days: detectors keep one value per local day, so a day is an int.

PIHPS and the markets report per calendar day in Western Indonesia Time (UTC+07:00, no DST), so
the day of an event is its UTC timestamp shifted by seven hours, divided into days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

WIB = timezone(timedelta(hours=7), "WIB")
_WIB_OFFSET_S = 7 * 3600
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class NaiveTimeError(ValueError):
    """A datetime without a UTC offset: its instant is ambiguous."""


def timestamp(moment: datetime) -> float:
    """Seconds since the epoch; refuses naive datetimes instead of guessing the zone."""
    if moment.tzinfo is None:
        raise NaiveTimeError(f"{moment.isoformat()} has no UTC offset; send RFC 3339 with an offset (+07:00)")
    return moment.timestamp()


def wib_day_of_ts(ts: float) -> int:
    return int((ts + _WIB_OFFSET_S) // 86400)


def wib_day(moment: datetime) -> int:
    """Days since 1970-01-01 of the WIB calendar date of `moment`."""
    return wib_day_of_ts(timestamp(moment))


def day_to_date(day: int) -> date:
    return date.fromordinal(day + _EPOCH_ORDINAL)


def date_to_day(value: date) -> int:
    return value.toordinal() - _EPOCH_ORDINAL


def from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def drop_older(entries: dict[Any, Any], oldest: float, time_of: Callable[[Any], float]) -> None:
    """Forget entries from before `oldest`. They were added as events came, so roughly in time order:
    dropping from the front until the first recent one costs only what is dropped (a full scan per
    event was most of a shipment's cost); an entry out of order is dropped a little later."""
    stale = []
    for key, value in entries.items():
        if time_of(value) >= oldest:
            break
        stale.append(key)
    for key in stale:
        del entries[key]
