"""The sink as the process `make run` starts (`python -m services.sink`), killed and starved of its
database: no event is lost and none is stored twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from pantau.contracts.codec import encode_event
from pantau.contracts.models import PriceObserved, new_event
from pantau.contracts.topics import PRICE_TOPIC
from pantau.db import migrate
from pantau.devstack import LocalInfra
from pantau.kafka import EventProducer
from pantau.settings import REPO_ROOT, Settings
from tests.conftest import TEST_DIR, Process, make_settings
from tests.integration.sink.conftest import count_rows, eventually, free_port, fresh_group_at_end
from tests.unit.storage.events import unique_source

MARKETS = ("pibc", "pikj", "prov_18", "prov_31", "prov_36", "prov_32")


@dataclass
class SinkProcess:
    popen: subprocess.Popen
    port: int
    log_path: Path

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def health(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0  # not listening (yet)

    def price_lag(self) -> float:
        return sum(v for k, v in self.metrics().items()
                   if k.startswith("pantau_consumer_lag_messages{") and f'topic="{PRICE_TOPIC}"' in k)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_sink(settings: Settings, group: str, log_path: Path) -> SinkProcess:
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "SINK_PORT": str(port),
        "SINK_CONSUMER_GROUP": group,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen(
        [sys.executable, "-m", "services.sink"], cwd=REPO_ROOT, env=env, stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    process = SinkProcess(popen, port, log_path)

    def serving() -> None:
        assert popen.poll() is None, f"the sink exited with {popen.returncode}:\n{process.log_tail()}"
        assert process.health() == 200

    eventually(serving, timeout_s=90)
    return process


def stop_sink(process: SinkProcess) -> int:
    """SIGTERM and wait: a clean stop stores and commits the batch in hand and exits 0."""
    if process.popen.poll() is None:
        process.popen.send_signal(signal.SIGTERM)
    try:
        return process.popen.wait(60)
    except subprocess.TimeoutExpired:
        process.popen.kill()
        process.popen.wait()
        raise AssertionError(f"the sink did not stop within 60 s of SIGTERM:\n{process.log_tail()}") from None


def produce_prices(settings: Settings, source: str, count: int, start: int = 0) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    with EventProducer(settings, client_id="sink-test", linger_ms=20, batch_size=512 * 1024) as producer:
        for i in range(start, start + count):
            payload = PriceObserved(
                commodity="beras", quality_grade="medium", market_code=MARKETS[i % len(MARKETS)], province_code="31",
                price_level="wholesale", unit="kg", price_idr_per_kg=12000.0 + i % 997,
            )
            event = new_event(payload, occurred_at=base + timedelta(seconds=30 * i), source=source)
            producer.send(PRICE_TOPIC, payload.kafka_key(), encode_event(event), event.event_type)
        producer.flush()


@pytest.fixture
def sink_logs(tmp_path: Path) -> Path:
    return tmp_path / "sink.log"


def test_sink_killed_mid_load_and_restarted_stores_every_event_exactly_once(sink_settings, sink_logs):
    settings = make_settings(database_url=sink_settings.database_url)
    group = fresh_group_at_end(settings)
    source = unique_source()
    produced = 100_000
    started = time.perf_counter()
    produce_prices(settings, source, produced)
    print(f"\nproduced {produced} events in {time.perf_counter() - started:.1f}s")

    first = start_sink(settings, group, sink_logs)
    try:
        stored_at_kill = eventually(lambda: _at_least(count_rows(settings, "price_observations", source), 10_000),
                                    timeout_s=180, interval_s=0.05)
        first.popen.send_signal(signal.SIGKILL)  # no chance to finish the batch or commit anything more
        first.popen.wait(30)
    finally:
        if first.popen.poll() is None:
            first.popen.kill()
    stored_after_kill = count_rows(settings, "price_observations", source)
    assert stored_after_kill < produced, "the sink finished before it could be killed mid-load"

    second = start_sink(settings, group, sink_logs)
    try:
        eventually(lambda: _equal(count_rows(settings, "price_observations", source), produced), timeout_s=300)
        eventually(lambda: _equal(second.price_lag(), 0), timeout_s=60)
        assert stop_sink(second) == 0
    finally:
        if second.popen.poll() is None:
            second.popen.kill()
    with psycopg.connect(settings.database_url) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM price_observations WHERE source = %s", (source,)
        ).fetchone()
        rolled_up = conn.execute("SELECT sum(observations) FROM price_daily WHERE day < '2026-04-15'").fetchone()[0]
    assert (rows, distinct) == (produced, produced)
    assert rolled_up == produced  # the rollup counted each event once too
    print(f"\nkilled with {stored_at_kill} of {produced} stored ({stored_after_kill} after the kill)")


@pytest.fixture
def private_postgres() -> Iterator[tuple[LocalInfra, Process, Settings]]:
    """A PostgreSQL+TimescaleDB server of this test alone, so it can be stopped and started."""
    port = free_port()
    url = f"postgresql://pantau:pantau-dev@127.0.0.1:{port}/pantau"
    base = TEST_DIR / f"sink-outage-{uuid.uuid4().hex[:8]}"
    infra = LocalInfra(make_settings(database_url=url), base)
    infra.prepare_postgres()
    server = Process(infra.postgres(), base / "postgres.log")
    server.wait_ready()
    try:
        infra.provision_database(url, timescaledb=True)
        settings = make_settings(database_url=url)
        migrate(settings)
        yield infra, server, settings
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_sink_waits_out_a_database_outage_keeps_serving_metrics_and_loses_nothing(
    private_postgres, sink_topics, sink_logs
):
    infra, server, settings = private_postgres
    group = fresh_group_at_end(settings)
    source = unique_source()
    sink = start_sink(settings, group, sink_logs)
    try:
        produce_prices(settings, source, 3000)
        eventually(lambda: _equal(count_rows(settings, "price_observations", source), 3000), timeout_s=120)
        assert sink.metrics()["pantau_sink_database_up"] == 1

        server.stop()
        outage_started = time.monotonic()
        eventually(lambda: _equal(sink.metrics()["pantau_sink_database_up"], 0), timeout_s=30)
        produce_prices(settings, source, 2000, start=3000)
        lag_early = eventually(lambda: _at_least(sink.price_lag(), 2000), timeout_s=30)
        produce_prices(settings, source, 2000, start=5000)
        lag_later = eventually(lambda: _at_least(sink.price_lag(), 4000), timeout_s=30)
        assert lag_later > lag_early  # lag grows while the database is away
        # Still scraped throughout; unhealthy once the database has been gone for more than 30 s.
        eventually(lambda: _equal(sink.health(), 503), timeout_s=45)
        while time.monotonic() - outage_started < 60:
            assert sink.metrics()["pantau_sink_database_up"] == 0
            time.sleep(2)
        assert sink.popen.poll() is None, sink.log_tail()

        server = Process(infra.postgres(), server.log_path)
        server.wait_ready()
        eventually(lambda: _equal(count_rows(settings, "price_observations", source), 7000), timeout_s=120)
        eventually(lambda: _equal(sink.price_lag(), 0), timeout_s=60)
        assert sink.health() == 200
        assert sink.metrics()["pantau_sink_database_up"] == 1
        assert stop_sink(sink) == 0
        with psycopg.connect(settings.database_url) as conn:
            assert conn.execute(
                "SELECT count(DISTINCT event_id) FROM price_observations WHERE source = %s", (source,)
            ).fetchone()[0] == 7000
    finally:
        if sink.popen.poll() is None:
            sink.popen.kill()
        server.stop()


def _at_least(value: float, minimum: float) -> float:
    assert value >= minimum, f"{value} < {minimum}"
    return value


def _equal(value: object, expected: object) -> object:
    assert value == expected, f"{value} != {expected}"
    return value
