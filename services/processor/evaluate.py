"""`python -m services.processor.evaluate` (make eval): the detectors scored through the real processor.

Two replays, each into fresh prefixed copies of the contract topics on a real broker, processed by a
real worker (`python -m services.processor`, exactly_once), its alerts read back from the alert topic
by a read_committed consumer:

1. the simulator with scenarios/eval.yaml (seed 42, from 2026-03-01 WIB, 150 simulated days) and the
   ground truth it writes: one line per alert a scenario should raise (or should not: glitches);
2. the real PIHPS history of Lampung and DKI Jakarta (data/pihps/, read by pantau.importers), scored
   against rises labelled in hindsight by pantau.detect.evaluate.label_episodes.

Prints per detector and commodity: alerts opened, true and false positives, recall, precision and
days from onset to first alert; then named checks from issue 5 (the 2023-24 rice rise, the 2022
chilli spike, the one-day glitches). Uses the broker at KAFKA_BOOTSTRAP_SERVERS, or starts an
embedded one under .local/eval when none answers there. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer

from pantau.contracts import (
    ALERT_TOPIC,
    DEADLETTER_TOPIC,
    HARVEST_TOPIC,
    PRICE_TOPIC,
    SHIPMENT_TOPIC,
    WIB,
    decode_event,
    encode_event,
    kafka_key,
    topic_spec,
)
from pantau.detect.conditions import PlaceKind, Severity
from pantau.detect.config import price_config
from pantau.detect.evaluate import AlertSpan, Episode, label_episodes, one_day_glitches, score
from pantau.detect.price import PriceObservation
from pantau.devstack import LocalInfra, port_is_open
from pantau.importers import open_file, province_filter, read_rows
from pantau.importers.records import Observation
from pantau.kafka import EventProducer, ensure_topics
from pantau.reference import load_reference
from pantau.settings import REPO_ROOT, Settings
from pantau.simulation import Simulation, load_scenarios
from pantau.simulation.engine import GroundTruth

SCENARIO_FILE = REPO_ROOT / "scenarios" / "eval.yaml"
SCENARIO_START = datetime(2026, 3, 1, tzinfo=WIB)
SCENARIO_DAYS = 150
SCENARIO_SEED = 42
PIHPS_DIR = REPO_ROOT / "data" / "pihps"
PIHPS_PROVINCES = ("Lampung", "DKI Jakarta")
CONTRACT_TOPICS = (PRICE_TOPIC, SHIPMENT_TOPIC, HARVEST_TOPIC, ALERT_TOPIC, DEADLETTER_TOPIC)
EARLY = timedelta(days=1)  # an alert opened this long before a scenario's onset still counts
LATE = timedelta(days=2)  # ... and this long after its end
STALL_S = 180.0  # the replay fails when the worker makes no progress for this long


# --- the broker and a worker ---------------------------------------------------------------------


@dataclass
class _Topic:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=lambda: {"retention.ms": "604800000"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """An Apache Kafka broker under .local/eval, for when none answers at KAFKA_BOOTSTRAP_SERVERS."""

    def __init__(self, settings: Settings) -> None:
        base = settings.local_dir / "eval"
        shutil.rmtree(base / "kafka", ignore_errors=True)
        self.infra = LocalInfra(settings, base)
        component = self.infra.kafka()
        self.infra.prepare_kafka()
        log = base / "kafka.log"
        self.process = subprocess.Popen(component.argv, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                        start_new_session=True, cwd=REPO_ROOT)  # fmt: skip
        deadline = time.monotonic() + 90
        while not component.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the embedded Kafka broker did not start; see {log}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(60)


class Replay:
    """Fresh prefixed topics and one processor worker reading them."""

    def __init__(self, settings: Settings, name: str, log_dir: Path) -> None:
        token = uuid.uuid4().hex[:8]
        self.settings = settings
        self.prefix = f"eval{token}.{name}."
        self.app_id = f"eval-processor-{name}-{token}"
        ensure_topics(settings, [_Topic(self.prefix + t, topic_spec(t).partitions) for t in CONTRACT_TOPICS])
        self.port = _free_port()
        self.log_path = log_dir / f"processor-{name}.log"
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "PROCESSOR_APP_ID": self.app_id,
            "PROCESSOR_TOPIC_PREFIX": self.prefix,
            "PROCESSOR_PORT": str(self.port),
            "PROCESSOR_DATA_DIR": str(log_dir / "data"),
            "PROCESSOR_BATCH_MAX_EVENTS": "5000",
            "PROCESSOR_SESSION_TIMEOUT_SECONDS": "6",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
        }
        self.process = subprocess.Popen([sys.executable, "-m", "services.processor"], cwd=REPO_ROOT, env=env,
                                        stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip

    def topic(self, contract_topic: str) -> str:
        return self.prefix + contract_topic

    def metric(self, name: str, topics: Iterable[str]) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") and any(f'topic="{t}"' in line for t in topics):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            self._alive()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).json().get("assigned_partitions"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise SystemExit(f"the processor got no partitions; see {self.log_path}")

    def produce(self, events: Iterable[Any]) -> int:
        count = 0
        with EventProducer(self.settings, client_id="eval") as producer:
            for event in events:
                producer.send(self.topic(event.payload.TOPIC), kafka_key(event), encode_event(event), event.event_type)
                count += 1
        return count

    def wait_processed(self, count: int, label: str) -> None:
        """Until the worker has consumed `count` source events and its outputs stopped changing."""
        started, last_report = time.monotonic(), 0.0
        while True:
            self._alive()
            done = self.metric("pantau_events_consumed_total", (PRICE_TOPIC, SHIPMENT_TOPIC, HARVEST_TOPIC))
            if done >= count:
                break
            if time.monotonic() - last_report > 15:
                print(f"  {label}: {done:,.0f} of {count:,} events processed", flush=True)
                last_report = time.monotonic()
            time.sleep(0.5)
        # the repartitioned stages finish after the sources: until nothing waits and nothing moves
        repartitions = (f"{self.app_id}-aggregates-repartition", f"{self.app_id}-price-by-commodity-repartition")
        quiet_since, moved_at, seen = time.monotonic(), time.monotonic(), (-1.0, -1.0)
        while time.monotonic() - quiet_since < 5:
            self._alive()
            state = (self.metric("pantau_events_consumed_total", repartitions),
                     self.metric("pantau_processor_held_events", repartitions))  # fmt: skip
            if state != seen:
                moved_at = time.monotonic()
            elif time.monotonic() - moved_at > STALL_S:
                raise SystemExit(f"the processor stalled: {state[1]:,.0f} items held and nothing handed over "
                                 f"for {STALL_S:.0f}s; see {self.log_path}")  # fmt: skip
            if state != seen or state[1] > 0:
                seen, quiet_since = state, time.monotonic()
            time.sleep(0.5)
        print(f"  {label}: {count:,} events in {time.monotonic() - started:.0f}s", flush=True)

    def alerts(self) -> list[Any]:
        consumer = KafkaConsumer(self.topic(ALERT_TOPIC), bootstrap_servers=self.settings.kafka_bootstrap_servers,
                                 auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                                 isolation_level="read_committed")  # fmt: skip
        events: list[Any] = []
        idle_since = time.monotonic()
        try:
            while time.monotonic() - idle_since < 3:
                for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                    events.extend(decode_event(r.value) for r in records)
                    idle_since = time.monotonic()
        finally:
            consumer.close()
        return events

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def _alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"the processor exited ({self.process.returncode}):\n{tail}")


# --- scoring -------------------------------------------------------------------------------------


@dataclass
class Opened:
    alert_id: str
    alert_type: str
    subject: str
    commodity: str | None
    opened_at: datetime
    resolved_at: datetime | None = None
    peak: str = "alert"


def opened_alerts(events: Sequence[Any]) -> list[Opened]:
    alerts: dict[str, Opened] = {}
    rank = {"normal": 0, "watch": 1, "alert": 2, "crisis": 3}
    for event in sorted(events, key=lambda e: (e.payload.alert_id, e.payload.sequence)):
        p = event.payload
        if event.event_type == "AlertOpened":
            alerts[p.alert_id] = Opened(p.alert_id, p.alert_type, p.subject, p.commodity, p.opened_at.astimezone(WIB),
                                        peak=p.severity)  # fmt: skip
        elif p.alert_id in alerts:
            alert = alerts[p.alert_id]
            if event.event_type == "AlertResolved":
                alert.resolved_at = event.occurred_at.astimezone(WIB)
            elif rank[p.severity] > rank[alert.peak]:
                alert.peak = p.severity
    return list(alerts.values())


@dataclass
class Row:
    scored: bool = True  # False: no ground truth for this detector here (alerts counted only)
    alerts: int = 0
    true_positives: int = 0
    false_positives: int = 0
    expected: int = 0
    found: int = 0
    delays_days: list[float] = field(default_factory=list)

    def line(self, label: str) -> str:
        if not self.scored:
            return f"  {label:<36} {self.alerts:>6}     -     -       -      -         -            -  (not scored)"
        recall = f"{self.found / self.expected:.2f}" if self.expected else "  - "
        precision = f"{self.true_positives / self.alerts:.2f}" if self.alerts else "  - "
        delay = f"{sorted(self.delays_days)[len(self.delays_days) // 2]:.1f}" if self.delays_days else "-"
        return (f"  {label:<36} {self.alerts:>6} {self.true_positives:>5} {self.false_positives:>5} "
                f"{self.found:>3}/{self.expected:<3} {recall:>6} {precision:>9} {delay:>12}")  # fmt: skip


HEADER = (f"  {'detector / commodity':<36} {'alerts':>6} {'TP':>5} {'FP':>5} {'found':>7} {'recall':>6} "
          f"{'precision':>9} {'days to alert':>12}")  # fmt: skip


def score_scenarios(alerts: list[Opened], truth: list[dict]) -> dict[tuple[str, str], Row]:
    """A ground-truth line is found when an alert on its subject opens from EARLY before its onset to
    LATE after its end; such alerts are true positives, every other alert a false positive (a line
    expecting no alert makes any alert on its subject in its window a false positive too). A line that
    is not required (a consequence the scenario may have) explains its alerts but is never missed."""
    rows: dict[tuple[str, str], Row] = defaultdict(Row)
    windows: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for line in truth:
        if line["expected_alert_type"] is None:
            continue
        onset, end = datetime.fromisoformat(line["onset"]), datetime.fromisoformat(line["end"])
        subject = line["alert_subject"]
        windows[subject].append((onset - EARLY, end + LATE))
        if not line.get("required", True):
            continue
        row = rows[(line["expected_alert_type"], line["subject"]["commodity"] or "-")]
        row.expected += 1
        hits = [a.opened_at for a in alerts if a.subject == subject and onset - EARLY <= a.opened_at <= end + LATE]
        if hits:
            row.found += 1
            row.delays_days.append(max(0.0, (min(hits) - onset).total_seconds() / 86400))
    for alert in alerts:
        row = rows[(alert.alert_type, alert.commodity or "-")]
        row.alerts += 1
        if any(start <= alert.opened_at <= end for start, end in windows.get(alert.subject, ())):
            row.true_positives += 1
        else:
            row.false_positives += 1
    return rows


def score_pihps(alerts: list[Opened], observations: dict[tuple[str, str], list[PriceObservation]], ref: Any,
                last_day: date) -> tuple[dict[tuple[str, str], Row], list[Episode]]:  # fmt: skip
    """price_spike alerts per commodity against the rises label_episodes finds in each series."""
    config = price_config(ref)
    rows: dict[tuple[str, str], Row] = {}
    episodes_all: list[Episode] = []
    for commodity in sorted({c for c, _ in observations}):
        spans: dict[tuple[str, str], list[AlertSpan]] = {}
        episodes: list[Episode] = []
        for (c, market), series in observations.items():
            if c != commodity:
                continue
            episodes += label_episodes(series, config.profiles[commodity].change_28d.watch)
            spans[(commodity, market)] = [
                AlertSpan(
                    a.alert_id,
                    a.subject,
                    a.opened_at.date(),
                    a.resolved_at.date() if a.resolved_at else None,
                    Severity.ALERT,
                    Severity[a.peak.upper()],
                    "",
                )  # fmt: skip
                for a in alerts
                if a.alert_type == "price_spike" and a.subject == f"price_spike:{commodity}:{market}"
            ]
        result = score(spans, episodes, last_day)
        rows[("price_spike", commodity)] = Row(
            alerts=result.alerts, true_positives=result.true_alerts, false_positives=len(result.false_alerts),
            expected=result.episodes, found=result.detected, delays_days=[float(d) for d in result.delays_days],
        )  # fmt: skip
        episodes_all += episodes
    for alert in alerts:
        if alert.alert_type == "price_disparity":
            row = rows.setdefault(("price_disparity", alert.commodity or "-"), Row(scored=False))
            row.alerts += 1
    return rows, episodes_all


def print_rows(title: str, rows: dict[tuple[str, str], Row]) -> None:
    print(f"\n{title}")
    print(HEADER)
    for (detector, commodity), row in sorted(rows.items()):
        print(row.line(f"{detector} / {commodity}"))
    total = Row()
    for row in rows.values():
        if not row.scored:
            continue
        total.alerts += row.alerts
        total.true_positives += row.true_positives
        total.false_positives += row.false_positives
        total.expected += row.expected
        total.found += row.found
        total.delays_days += row.delays_days
    print(total.line("all scored"))


def opened_between(alerts: list[Opened], subject: str, start: date, end: date) -> list[Opened]:
    return [a for a in alerts if a.subject == subject and start <= a.opened_at.date() <= end]


# --- the two replays -----------------------------------------------------------------------------


def run_scenarios(settings: Settings, log_dir: Path, ref: Any) -> None:
    scenarios = load_scenarios(SCENARIO_FILE, SCENARIO_START, ref)
    simulation = Simulation(ref, seed=SCENARIO_SEED, start=SCENARIO_START, scenarios=scenarios)
    events, truth = [], []
    for item in simulation.run(until=SCENARIO_START + timedelta(days=SCENARIO_DAYS)):
        if isinstance(item, GroundTruth):
            truth.append(item.line)
        else:
            events.append(item)
    replay = Replay(settings, "scenarios", log_dir)
    try:
        replay.wait_ready()
        sent = replay.produce(events)
        replay.wait_processed(sent, f"scenarios ({len(scenarios)} from {SCENARIO_FILE.name}, {SCENARIO_DAYS} days)")
        alerts = opened_alerts(replay.alerts())
    finally:
        replay.stop()
    print_rows(f"Simulated scenarios ({len(truth)} ground-truth lines)", score_scenarios(alerts, truth))
    glitches = [line for line in truth if line["kind"] == "data_glitch"]
    for line in glitches:
        subject = f"price_spike:{line['subject']['commodity']}:{line['subject']['place_code']}"
        onset, end = datetime.fromisoformat(line["onset"]), datetime.fromisoformat(line["end"])
        hit = [a for a in alerts if a.subject == subject and onset - EARLY <= a.opened_at <= end + LATE]
        print(f"  one-day glitch {line['scenario']}: {'ALERT (should be none)' if hit else 'no alert'}")


def run_pihps(settings: Settings, log_dir: Path, ref: Any) -> None:
    provinces = province_filter(list(PIHPS_PROVINCES), ref)
    rows: list[Observation] = []
    for path in sorted(PIHPS_DIR.glob("*.csv")):
        rows += [r for r in read_rows(open_file(path), ref, provinces) if isinstance(r, Observation)]
    rows.sort(key=lambda r: (r.observed_on, r.commodity, r.market_code))
    series: dict[tuple[str, str], list[PriceObservation]] = defaultdict(list)
    for r in rows:
        series[(r.commodity, r.market_code)].append(PriceObservation(
            r.commodity, r.market_code, r.price_idr, r.occurred_at, r.price_level, r.quality_grade,
            r.province_code, PlaceKind.PROVINCE))  # fmt: skip
    replay = Replay(settings, "pihps", log_dir)
    try:
        replay.wait_ready()
        sent = replay.produce(r.to_event() for r in rows)
        replay.wait_processed(sent, f"PIHPS {', '.join(PIHPS_PROVINCES)} ({len(series)} series)")
        alerts = opened_alerts(replay.alerts())
    finally:
        replay.stop()
    last_day = max(r.observed_on for r in rows)
    table, _ = score_pihps(alerts, series, ref, last_day)
    print_rows(f"Real PIHPS history {rows[0].observed_on} .. {last_day} (episodes labelled in hindsight)", table)
    checks = [
        ("rice rise Aug 2023 - Mar 2024, Lampung", "price_spike:beras:prov_18", date(2023, 8, 1), date(2024, 3, 31)),
        ("rice rise Aug 2023 - Mar 2024, Jakarta", "price_spike:beras:prov_31", date(2023, 8, 1), date(2024, 3, 31)),
        ("chilli spike 2022, Jakarta (cabai merah)", "price_spike:cabai_merah:prov_31", date(2022, 1, 1),
         date(2022, 12, 31)),
        ("chilli spike 2022, Jakarta (cabai rawit)", "price_spike:cabai_rawit:prov_31", date(2022, 1, 1),
         date(2022, 12, 31)),
    ]  # fmt: skip
    for label, subject, start, end in checks:
        hits = opened_between(alerts, subject, start, end)
        first = min((a.opened_at.date() for a in hits), default=None)
        print(f"  {label}: {'alert opened ' + first.isoformat() if first else 'NO ALERT'}")
    glitches = glitch_alerts(alerts, series)
    raised = [(day, alert) for day, alert in glitches if alert is not None]
    print(f"  one-day glitches in the data: {len(glitches)}, alerts opened on one: {len(raised)}"
          f"{' (should be none)' if raised else ''}")  # fmt: skip
    for day, alert in raised:
        print(f"    {alert.subject} opened {alert.opened_at.date()} (glitch {day})")


def glitch_alerts(
    alerts: list[Opened], series: dict[tuple[str, str], list[PriceObservation]]
) -> list[tuple[date, Opened | None]]:
    """Each one-day glitch of the replayed series, with a price_spike alert of its series that opened
    on the glitch day or the day of the next observation (persistence would hold it one observation),
    or None."""
    found = []
    for (commodity, market), observations in sorted(series.items()):
        subject = f"price_spike:{commodity}:{market}"
        for i in one_day_glitches(observations):
            day, next_day = observations[i].occurred_at.date(), observations[i + 1].occurred_at.date()
            hit = next((a for a in opened_between(alerts, subject, day, next_day)), None)
            found.append((day, hit))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("scenarios", "pihps"), help="run one of the two replays")
    args = parser.parse_args(argv)
    settings = Settings(log_level="WARNING")
    broker = None
    host, port = settings.kafka_address
    if not port_is_open(host, port):
        print(f"no broker at {settings.kafka_bootstrap_servers}: starting one under .local/eval", flush=True)
        broker = EmbeddedBroker(settings)
    log_dir = settings.local_dir / "eval" / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    ref = load_reference()
    started = time.monotonic()
    try:
        if args.only in (None, "scenarios"):
            run_scenarios(settings, log_dir, ref)
        if args.only in (None, "pihps"):
            run_pihps(settings, log_dir, ref)
    finally:
        if broker is not None:
            broker.stop()
    print(f"\n(evaluated in {time.monotonic() - started:.0f}s; worker logs in {log_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
