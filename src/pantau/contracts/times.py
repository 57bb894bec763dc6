"""Time rule for events: aware datetimes only; WIB (Asia/Jakarta) on the wire and on screens, UTC in
storage. A naive datetime is refused with a message that says how to fix it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")
__all__ = ["UTC", "WIB", "NaiveDatetimeError", "now_wib", "require_aware", "to_utc", "to_wib"]


class NaiveDatetimeError(ValueError):
    """A datetime without a timezone where an instant is needed."""


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(
            f"{name} is a naive datetime ({value.isoformat()}); give it a timezone, e.g. "
            f"datetime(..., tzinfo=WIB) from pantau.contracts (events carry WIB +07:00, storage UTC)"
        )
    return value


def to_utc(value: datetime, name: str = "datetime") -> datetime:
    """For storage: the same instant in UTC."""
    return require_aware(value, name).astimezone(UTC)


def to_wib(value: datetime, name: str = "datetime") -> datetime:
    """For display and for producers: the same instant in WIB (+07:00)."""
    return require_aware(value, name).astimezone(WIB)


def now_wib() -> datetime:
    return datetime.now(WIB)
