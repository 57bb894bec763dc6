"""Replay real price series through the detectors and the alert lifecycle, and score the alerts.

Pure: reads CSV files it is given, keeps everything in memory, returns alerts per series. Used by
tests/unit/detect/test_real_pihps.py and by hand:

    .venv/bin/python -m pantau.detect.evaluate          # alerts per PIHPS series + precision/recall
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pantau.detect.conditions import Condition, PlaceKind, Rejected, Severity
from pantau.detect.disparity import DisparityConfig, DisparityPair, DisparityState, step_disparity
from pantau.detect.lifecycle import AlertState, LifecycleConfig, Transition, TransitionKind, step_lifecycle
from pantau.detect.price import PriceConfig, PriceObservation, step_price
from pantau.detect.timebase import WIB
from pantau.importers.records import observed_at

PIHPS_DIR = Path(__file__).resolve().parents[3] / "data" / "pihps"


@dataclass(frozen=True, slots=True)
class Series:
    """One PIHPS province-average series."""

    commodity: str
    pihps_province_id: int
    market_code: str  # prov_<BPS code>
    province_code: str  # BPS code


def pihps_file(commodity: str, directory: Path = PIHPS_DIR) -> Path:
    return directory / f"komoditas_{commodity}_2022_2026.csv"


def read_pihps(series: Series, directory: Path = PIHPS_DIR) -> list[PriceObservation]:
    """The series' observations in date order, one per PIHPS row."""
    wanted = str(series.pihps_province_id)
    observations = []
    with pihps_file(series.commodity, directory).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Province_ID"] != wanted:
                continue
            observations.append(
                PriceObservation(
                    commodity=series.commodity,
                    market_code=series.market_code,
                    price_idr=float(row["Price"]),
                    occurred_at=observed_at(date.fromisoformat(row["Date_Param"])),  # as the importer dates it
                    price_level="retail",
                    quality_grade="rata_rata",
                    province_code=series.province_code,
                    place_kind=PlaceKind.PROVINCE,
                )
            )
    observations.sort(key=lambda o: o.occurred_at)
    return observations


@dataclass(frozen=True, slots=True)
class AlertSpan:
    alert_id: str
    subject: str
    opened_on: date
    resolved_on: date | None
    opened_severity: Severity
    peak_severity: Severity
    title_en: str


@dataclass
class Replay:
    transitions: list[Transition] = field(default_factory=list)
    rejected: list[tuple[PriceObservation, Rejected]] = field(default_factory=list)
    severities: dict[date, Severity] = field(default_factory=dict)  # emitted severity per day

    @property
    def alerts(self) -> list[AlertSpan]:
        return alert_spans(self.transitions)


def alert_spans(transitions: Iterable[Transition]) -> list[AlertSpan]:
    spans: dict[str, dict] = {}
    for t in transitions:
        day = t.occurred_at.astimezone(WIB).date()
        if t.kind is TransitionKind.OPENED:
            spans[t.alert_id] = {"t": t, "opened_on": day, "resolved_on": None, "peak": t.severity}
        else:
            span = spans[t.alert_id]
            if t.kind is TransitionKind.RESOLVED:
                span["resolved_on"] = day
            else:
                span["peak"] = max(span["peak"], t.severity)
    return [
        AlertSpan(
            s["t"].alert_id,
            s["t"].subject,
            s["opened_on"],
            s["resolved_on"],
            s["t"].severity,
            s["peak"],
            s["t"].title_en,
        )
        for s in spans.values()
    ]


def _drive(
    replay: Replay,
    conditions: Sequence[Condition],
    alert_states: dict[str, AlertState],
    lifecycle: LifecycleConfig,
) -> None:
    for condition in conditions:
        replay.severities[condition.observed_at.astimezone(WIB).date()] = condition.severity
        state, transitions = step_lifecycle(alert_states.get(condition.subject), condition, lifecycle)
        alert_states[condition.subject] = state
        replay.transitions.extend(transitions)


def replay_prices(observations: Iterable[PriceObservation], config: PriceConfig, lifecycle: LifecycleConfig) -> Replay:
    """Every observation through step_price and the lifecycle, in the order given."""
    replay, states, alert_states = Replay(), {}, {}
    for obs in observations:
        key = f"{obs.commodity}:{obs.market_code}"
        states[key], result = step_price(states.get(key), obs, config)
        if isinstance(result, Rejected):
            replay.rejected.append((obs, result))
        else:
            _drive(replay, result, alert_states, lifecycle)
    return replay


def replay_disparity(
    observations: Iterable[PriceObservation],
    pair: DisparityPair,
    config: DisparityConfig,
    lifecycle: LifecycleConfig,
) -> Replay:
    """Both sides' observations (merged in event-time order) through step_disparity and the lifecycle."""
    replay, alert_states = Replay(), {}
    state: DisparityState | None = None
    for obs in sorted(observations, key=lambda o: o.occurred_at):
        state, result = step_disparity(state, obs, pair, config)
        if isinstance(result, Rejected):
            replay.rejected.append((obs, result))
        else:
            _drive(replay, result, alert_states, lifecycle)
    return replay


# --- scoring against labelled episodes -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Episode:
    """A known price rise of one series: an alert opened from `lead_days` before start to end is a hit."""

    commodity: str
    market_code: str
    start: date
    end: date
    label: str


@dataclass
class Score:
    alerts: int = 0
    true_alerts: int = 0
    episodes: int = 0
    detected: int = 0
    delays_days: list[int] = field(default_factory=list)  # first alert opened - episode start
    false_alerts: list[tuple[str, date]] = field(default_factory=list)
    missed: list[Episode] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        return self.detected / self.episodes if self.episodes else 1.0


def score(
    alerts_by_series: dict[tuple[str, str], list[AlertSpan]],
    episodes: Sequence[Episode],
    last_day: date,
    lead_days: int = 14,
    min_severity: Severity = Severity.ALERT,
) -> Score:
    """Precision: share of alerts that overlap an episode (from lead_days before its start to its end).
    Recall: share of episodes that an alert overlaps. Delay: first overlapping alert's opening - start
    (0 when it was already open). Alerts still open at the end run to `last_day`."""
    result = Score(episodes=len(episodes))
    lead = timedelta(days=lead_days)

    def overlaps(span: AlertSpan, episode: Episode) -> bool:
        return span.opened_on <= episode.end and (span.resolved_on or last_day) >= episode.start - lead

    for (commodity, market), spans in alerts_by_series.items():
        windows = [e for e in episodes if e.commodity == commodity and e.market_code == market]
        for span in spans:
            if span.peak_severity < min_severity:
                continue
            result.alerts += 1
            if any(overlaps(span, e) for e in windows):
                result.true_alerts += 1
            else:
                result.false_alerts.append((f"{commodity}:{market}", span.opened_on))
    for episode in episodes:
        spans = alerts_by_series.get((episode.commodity, episode.market_code), [])
        hits = sorted(s.opened_on for s in spans if s.peak_severity >= min_severity and overlaps(s, episode))
        if hits:
            result.detected += 1
            result.delays_days.append(max(0, (hits[0] - episode.start).days))
        else:
            result.missed.append(episode)
    return result


def one_day_glitches(observations: Sequence[PriceObservation]) -> list[int]:
    """Indexes of days more than 5 % off both neighbours (at most 4 days apart) which agree within 1 %:
    the data glitches of PIHPS (SOURCES.md: DKI Jakarta rice 2023-05-09 14,450, 05-10 13,350, 05-11 14,450)."""
    found = []
    for i in range(1, len(observations) - 1):
        before, day, after = observations[i - 1 : i + 2]
        if (after.occurred_at - before.occurred_at).days > 4:
            continue
        a, b, c = before.price_idr, day.price_idr, after.price_idr
        if abs(a / c - 1) <= 0.01 and abs(b / a - 1) > 0.05 and abs(b / c - 1) > 0.05:
            found.append(i)
    return found


def label_episodes(
    observations: Sequence[PriceObservation], rise: float, min_halves: int = 2, market_code: str | None = None
) -> list[Episode]:
    """Known rises in hindsight, by a rule that shares nothing with the detectors' models.

    Split the series into half-months (1st-15th, 16th-end). A half-month is elevated when its median
    price is at least (1 + rise) times the median of the days 180 to 30 days before it starts. At least
    `min_halves` consecutive elevated half-months form an episode, which starts one half-month before
    the first (the onset) and ends with the last.
    """
    if not observations:
        return []
    prices = {o.occurred_at.astimezone(WIB).date(): o.price_idr for o in observations}
    days = sorted(prices)
    commodity, market = observations[0].commodity, market_code or observations[0].market_code

    def half_start(day: date) -> date:
        return day.replace(day=1 if day.day <= 15 else 16)

    def next_half(start: date) -> date:
        if start.day == 1:
            return start.replace(day=16)
        return date(start.year + (start.month == 12), start.month % 12 + 1, 1)

    def median(values: list[float]) -> float:
        values = sorted(values)
        return values[len(values) // 2]

    elevated: list[date] = []
    start = half_start(days[0])
    while start <= days[-1]:
        end = next_half(start)
        current = [prices[d] for d in days if start <= d < end]
        base = [prices[d] for d in days if start - timedelta(days=180) <= d < start - timedelta(days=30)]
        if current and len(base) >= 60 and median(current) >= (1.0 + rise) * median(base):
            elevated.append(start)
        start = end

    episodes: list[Episode] = []
    run: list[date] = []
    for half in [*elevated, None]:
        if half is not None and run and next_half(run[-1]) == half:
            run.append(half)
            continue
        if len(run) >= min_halves:
            onset = run[0] - timedelta(days=15)
            onset = half_start(onset)
            last_end = next_half(run[-1]) - timedelta(days=1)
            episodes.append(Episode(commodity, market, onset, last_end, f"{len(run)} elevated half-months"))
        run = [half] if half is not None else []
    return episodes


PIHPS_PROVINCES = ((10, "prov_18", "18"), (13, "prov_31", "31"))  # PIHPS Province_ID, market, BPS code


@dataclass
class PihpsEvaluation:
    alerts: dict[tuple[str, str], list[AlertSpan]]
    episodes: list[Episode]
    score: Score
    open_share: float  # share of series-days with an open price_spike alert
    episode_share: float  # share of series-days inside a labelled episode


def evaluate_pihps(
    price_config: PriceConfig, lifecycle: LifecycleConfig, commodities: Sequence[str], directory: Path = PIHPS_DIR
) -> PihpsEvaluation:
    """Replay every PIHPS series (commodity x Lampung, DKI Jakarta) and score it against label_episodes,
    with each commodity's 28-day p95 rise as the episode threshold."""
    alerts, episodes = {}, []
    series_days = open_days = episode_days = 0
    last_day = date.min
    for commodity in commodities:
        rise = price_config.profiles[commodity].change_28d.watch
        for province_id, market, province in PIHPS_PROVINCES:
            observations = read_pihps(Series(commodity, province_id, market, province), directory)
            first, last = (o.occurred_at.astimezone(WIB).date() for o in (observations[0], observations[-1]))
            last_day = max(last_day, last)
            spans = replay_prices(observations, price_config, lifecycle).alerts
            alerts[(commodity, market)] = spans
            labelled = label_episodes(observations, rise)
            episodes += labelled
            series_days += (last - first).days + 1
            open_days += sum(((s.resolved_on or last) - s.opened_on).days + 1 for s in spans)
            episode_days += sum((e.end - e.start).days + 1 for e in labelled)
    result = score(alerts, episodes, last_day)
    return PihpsEvaluation(alerts, episodes, result, open_days / series_days, episode_days / series_days)


def main() -> None:
    from pantau.detect import config as detect_config
    from pantau.reference import load_reference

    ref = load_reference()
    commodities = [c.code for c in ref.commodities if c.pihps is not None]
    result = evaluate_pihps(detect_config.price_config(ref), detect_config.lifecycle_config(ref), commodities)
    for (commodity, market), spans in result.alerts.items():
        labelled = [
            (e.start.isoformat(), e.end.isoformat())
            for e in result.episodes
            if (e.commodity, e.market_code) == (commodity, market)
        ]
        print(f"{commodity}:{market}  episodes {labelled}")
        for span in spans:
            until = span.resolved_on or "open"
            print(f"    {span.opened_on} .. {until}  peak {span.peak_severity.label}  {span.title_en}")
    s = result.score
    delays = sorted(s.delays_days)
    print(
        f"\nprice_spike alerts {s.alerts}, inside a labelled episode {s.true_alerts}: precision {s.precision:.2f}\n"
        f"labelled episodes {s.episodes}, with an alert {s.detected}: recall {s.recall:.2f}, "
        f"median delay {delays[len(delays) // 2] if delays else '-'} days\n"
        f"series-days with an open alert {result.open_share:.0%} (inside episodes: {result.episode_share:.0%})"
    )


if __name__ == "__main__":
    main()
