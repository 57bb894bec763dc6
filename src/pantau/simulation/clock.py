"""The simulated clock: where the simulation stands at a given wall-clock time, and back.

Two ways to run (SIMULATOR_FOLLOW_WALL_CLOCK):
- pure speed: the simulated clock runs `speed` times faster than the wall clock, forever
  (evaluations over a fixed past period);
- catch up, then live: the same, but never ahead of the wall clock. A start in the past is caught
  up at `speed`; from then on one simulated second passes per wall second, so event times are "now"
  and dashboards and staleness alerts see a live system.

Pure: wall time comes in as an argument (Unix seconds), so tests drive it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from pantau.contracts import WIB, require_aware

# A speed far above what the producer can do (tests use 1e9) must not overflow datetime: the clock
# never runs further than this past its origin.
MAX_SPAN = timedelta(days=365 * 1000)


def default_start(now: datetime, backfill_days: int) -> datetime:
    """Local midnight WIB of the day `backfill_days` before `now`'s day in Jakarta."""
    day: date = require_aware(now, "now").astimezone(WIB).date() - timedelta(days=backfill_days)
    return datetime.combine(day, time(0), tzinfo=WIB)


@dataclass(frozen=True)
class SimulatedClock:
    """Simulated time `origin_sim` at wall time `origin_wall`, advancing `speed` times faster than the
    wall clock; with `follow_wall_clock` it never passes the wall clock."""

    origin_wall: float
    origin_sim: datetime
    speed: float
    follow_wall_clock: bool

    def __post_init__(self) -> None:
        require_aware(self.origin_sim, "origin_sim")
        if self.speed <= 0:
            raise ValueError(f"speed must be above 0, got {self.speed}")

    def _paced(self, wall: float) -> datetime:
        seconds = (wall - self.origin_wall) * self.speed
        return self.origin_sim + timedelta(seconds=min(seconds, MAX_SPAN.total_seconds()))

    def simulated(self, wall: float) -> datetime:
        """The simulated time at wall time `wall`."""
        paced = self._paced(wall)
        if self.follow_wall_clock:
            return min(paced, datetime.fromtimestamp(wall, WIB))
        return paced.astimezone(WIB)

    def wall_due(self, moment: datetime) -> float:
        """The wall time at which the simulated clock reaches `moment` (inverse of simulated)."""
        due = self.origin_wall + (moment - self.origin_sim).total_seconds() / self.speed
        if self.follow_wall_clock:
            return max(due, moment.timestamp())
        return due

    def caught_up(self, wall: float) -> bool:
        """Following the wall clock and reached it: the simulation is live."""
        return self.follow_wall_clock and self._paced(wall).timestamp() >= wall

    def catch_up_fraction(self, wall: float, since: datetime) -> float:
        """How much of the way from `since` (the start) to the wall clock the simulation has come."""
        total = wall - since.timestamp()
        if total <= 0 or self.caught_up(wall):
            return 1.0
        return min(max((self.simulated(wall).timestamp() - since.timestamp()) / total, 0.0), 1.0)
