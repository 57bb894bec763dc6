"""Every PromQL panel of the pipeline dashboard, run against a real Prometheus that scrapes metrics
replays of the simulator, processor and sink (their real metric objects, realistic values) and
evaluates the recording and alert rules of deploy/prometheus/rules."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from pantau.dashboards import DASHBOARDS_DIR, RULES_DIR, check_dashboard, load_dashboard, load_datasources
from pantau.devstack import http_ok
from pantau.settings import REPO_ROOT
from tests.integration.dashboards.metrics_replay import SERVICES_WITH_REPLAY

pytestmark = pytest.mark.prometheus

PROMQL_DASHBOARDS = [
    path for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    if any(load_datasources()[t.datasource_uid].type == "prometheus"
           for p in load_dashboard(path).panels for t in p.targets)
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def replays() -> Iterator[dict[str, str]]:
    """One metrics replay process per service, as Prometheus targets {job: host:port}."""
    started: list[subprocess.Popen] = []
    targets = {}
    try:
        for service in SERVICES_WITH_REPLAY:
            port = free_port()
            started.append(subprocess.Popen(
                [sys.executable, "-m", "tests.integration.dashboards.metrics_replay", "--service", service,
                 "--port", str(port)],
                cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            ))
            targets[service] = f"127.0.0.1:{port}"
        for (service, target), process in zip(targets.items(), started, strict=True):
            deadline = time.monotonic() + 30
            while not http_ok(f"http://{target}/healthz"):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode(errors="replace") if process.poll() is not None else ""
                    pytest.fail(f"the {service} metrics replay did not start on {target}:\n{output}")
                time.sleep(0.2)
        yield targets
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def prometheus_url(prometheus_factory: Callable[..., str], replays: dict[str, str]) -> str:
    return prometheus_factory(targets=replays, rule_files=sorted(RULES_DIR.glob("*.yml")), port=free_port())


def check_until_every_panel_has_series(path, prometheus_url, timeout_s: float = 90.0):
    """Recording rules need a few scrapes and evaluations before their first sample."""
    deadline = time.monotonic() + timeout_s
    while True:
        results = check_dashboard(path, None, prometheus_url)
        if all(r.ok for r in results) or time.monotonic() > deadline:
            return results
        time.sleep(2)


@pytest.mark.parametrize("path", PROMQL_DASHBOARDS, ids=lambda p: p.stem)
def test_every_promql_panel_returns_series_from_a_prometheus_scraping_the_services_metrics(path, prometheus_url):
    results = check_until_every_panel_has_series(path, prometheus_url)
    failed = [f"{r}\n    {r.query}" for r in results if not r.ok]
    assert not failed, "panels without data:\n" + "\n".join(failed)
    queried = {r.panel for r in results}
    assert queried == {p.title for p in load_dashboard(path).panels}


def test_a_panel_on_a_metric_nobody_exports_is_reported_empty(tmp_path, prometheus_url):
    dashboard = load_dashboard(DASHBOARDS_DIR / "pipeline.json").raw
    broken = {**dashboard, "panels": [{**dashboard["panels"][1], "targets": [
        {**dashboard["panels"][1]["targets"][0], "expr": "rate(pantau_events_that_no_one_counts_total[5m])"}]}]}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    [result] = check_dashboard(path, None, prometheus_url)
    assert not result.ok
    assert result.problem == "the query returned no series"
