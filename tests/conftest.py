"""Fixtures for the real parts: Apache Kafka, PostgreSQL+TimescaleDB and Prometheus.

The test stack runs on its own ports (Kafka 19092, PostgreSQL 55433, Prometheus per test) with its
state in .local/test/, so it never touches a running `make run`. A test stack already listening on
those ports is reused (set PANTAU_TEST_KEEP_STACK=1 to leave it running between sessions); a part
that cannot start fails the tests that need it, with its log. Nothing is skipped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from pantau.devstack import Component, LocalInfra, http_ok, port_is_open
from pantau.settings import REPO_ROOT, Settings

TEST_DIR = REPO_ROOT / ".local" / "test"
KEEP_STACK = os.environ.get("PANTAU_TEST_KEEP_STACK") == "1"
BASE_SETTINGS = {
    "environment": "test",
    "kafka_bootstrap_servers": "127.0.0.1:19092",
    "database_url": "postgresql://pantau:pantau-dev@127.0.0.1:55433/pantau",
    "prometheus_url": "http://127.0.0.1:19090",
    "local_dir": REPO_ROOT / ".local",
    "log_format": "console",
}


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: the test stack's addresses plus the given overrides."""
    return Settings(**{**BASE_SETTINGS, **overrides})


class Process:
    """A real server process started for the tests, in its own process group."""

    def __init__(self, component: Component, log_path: Path) -> None:
        self.component = component
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            component.argv,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=component.user,
            cwd=REPO_ROOT,
        )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.component.ready():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                pytest.fail(f"{self.component.name} did not start (exit {self.popen.poll()}); log tail:\n{tail}")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.popen.poll() is not None:
            return
        sig = signal.SIGINT if self.component.stopsignal == "INT" else signal.SIGTERM
        os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


@pytest.fixture(scope="session")
def test_infra() -> LocalInfra:
    return LocalInfra(make_settings(), TEST_DIR)


def _start(infra_part: Component, prepare: Callable[[], None], state_dirs: list[Path]) -> Process | None:
    TEST_DIR.mkdir(parents=True, exist_ok=True)
    # Sessions running side by side share one test stack; the lock makes exactly one start it.
    with (TEST_DIR / f"{infra_part.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if port_is_open(infra_part.host, infra_part.port):
            return None  # started by another or an earlier session: reuse it
        for directory in state_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        prepare()
        process = Process(infra_part, TEST_DIR / "logs" / f"{infra_part.name}.log")
        process.wait_ready()
        return process


@pytest.fixture(scope="session")
def kafka_broker(test_infra: LocalInfra) -> Iterator[str]:
    """Bootstrap address of a real single-node Apache Kafka (KRaft) broker."""
    process = _start(test_infra.kafka(), test_infra.prepare_kafka, [TEST_DIR / "kafka"])
    yield test_infra.settings.kafka_bootstrap_servers
    if process and not KEEP_STACK:
        process.stop()


@pytest.fixture(scope="session")
def postgres_server(test_infra: LocalInfra) -> Iterator[LocalInfra]:
    """A real PostgreSQL 15 server with TimescaleDB preloaded."""
    process = _start(test_infra.postgres(), test_infra.prepare_postgres, [TEST_DIR / "postgres"])
    yield test_infra
    if process and not KEEP_STACK:
        process.stop()


def _database(postgres_server: LocalInfra, timescaledb: bool) -> Iterator[Settings]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = f"postgresql://pantau:pantau-dev@127.0.0.1:55433/{name}"
    postgres_server.provision_database(url, timescaledb=timescaledb)
    try:
        yield make_settings(database_url=url)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def database(postgres_server: LocalInfra) -> Iterator[Settings]:
    """Settings pointing at a fresh, empty database with TimescaleDB (not yet migrated)."""
    yield from _database(postgres_server, timescaledb=True)


@pytest.fixture
def plain_database(postgres_server: LocalInfra) -> Iterator[Settings]:
    """Settings pointing at a fresh database without TimescaleDB: the code must work there too."""
    yield from _database(postgres_server, timescaledb=False)


@pytest.fixture
def kafka_settings(kafka_broker: str) -> Settings:
    return make_settings(kafka_bootstrap_servers=kafka_broker)


@pytest.fixture
def fresh_topic_name() -> Callable[[], str]:
    """A new topic name per call, so tests never see each other's events."""
    return lambda: f"t-{uuid.uuid4().hex}"


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start a real Prometheus scraping the given targets every second; returns its base URL."""
    started: list[Process] = []

    def start(targets: dict[str, str], rule_files: list[Path] | None = None, port: int = 19090) -> str:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files or []],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
            ],
        }
        directory = tmp_path / f"prometheus-{port}"
        directory.mkdir()
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        argv = [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        component = Component(
            "prometheus", argv, "127.0.0.1", port, "PROMETHEUS_URL",
            lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"),
        )
        if port_is_open("127.0.0.1", port):
            pytest.fail(f"port {port} for the test Prometheus is taken; stop what holds it")
        process = Process(component, directory / "prometheus.log")
        started.append(process)
        process.wait_ready()
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()
