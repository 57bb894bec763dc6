"""Prometheus rules are code: promtool accepts them and their unit tests pass; every alert carries a
severity and English and Indonesian text, and is tested firing right after its `for:` and quiet one
evaluation before; every recording rule has an expected value in a test."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pantau.dashboards import (
    DOCUMENTED_METRICS,
    PROMETHEUS_BUILTIN_METRICS,
    RULES_DIR,
    metric_family,
    promql_metric_names,
    recording_rule_names,
)
from pantau.settings import REPO_ROOT

TESTS_DIR = REPO_ROOT / "deploy" / "prometheus" / "tests"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*.yml"))


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


ALERTS = [r for r in rules() if "alert" in r]
RECORDS = [r for r in rules() if "record" in r]


def duration(text: str) -> int:
    """Prometheus duration ("10m", "34h11m") in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"cannot read duration {text!r}"
    size = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return int(sum(int(n) * size[u] for n, u in parts))


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing (Debian package prometheus): run make setup"
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=REPO_ROOT)


def test_promtool_accepts_the_rule_files():
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass():
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_6_alerts_exist():
    assert {a["alert"] for a in ALERTS} == {
        "PantauServiceDown", "PantauConsumerLagGrowing", "PantauDeadLetterRateHigh", "PantauSinkStalled",
        "PantauMarketPriceDataMissing", "PantauEventToAlertLatencyHigh"}


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a["alert"])
def test_every_alert_has_a_severity_and_english_and_indonesian_text(alert):
    assert alert["labels"]["severity"] in {"critical", "warning"}
    annotations = alert["annotations"]
    for key in ("summary", "description", "summary_id", "description_id"):
        assert annotations.get(key, "").strip(), f"{alert['alert']} lacks the annotation {key}"
    assert annotations["summary"] != annotations["summary_id"]


@pytest.mark.parametrize("rule", ALERTS + RECORDS, ids=lambda r: r.get("alert") or r["record"])
def test_rules_use_only_documented_metrics_and_recording_rules(rule):
    for name in promql_metric_names(rule["expr"]):
        assert (metric_family(name) in DOCUMENTED_METRICS or name in PROMETHEUS_BUILTIN_METRICS
                or name in recording_rule_names()), f"{name} is neither documented nor recorded"


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["record"])
def test_recording_rules_are_named_level_metric_operations(record):
    level, metric, operations = record["record"].split(":")
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", level)
    assert re.fullmatch(r"[a-z0-9_]+", operations)
    assert metric in DOCUMENTED_METRICS or f"{metric}_total" in DOCUMENTED_METRICS, (
        f"{metric} is not a documented metric (counters drop _total in recorded names)")
    # the level names the labels the rule keeps: its `by (...)` labels (without le), plus quantile
    by = re.search(r"\bby \(([^)]*)\)", record["expr"])
    if by:
        kept = [label.strip() for label in by.group(1).split(",") if label.strip() != "le"]
        kept += ["quantile"] if "quantile" in record.get("labels", {}) else []
        assert level == "_".join(kept), f"{record['record']} keeps {kept}"
    else:  # arithmetic on recorded series keeps their level
        assert {name.split(":")[0] for name in promql_metric_names(record["expr"])} == {level}


def unit_tests() -> list[tuple[Path, dict, dict]]:
    found = []
    for path in TEST_FILES:
        document = yaml.safe_load(path.read_text())
        for test in document["tests"]:
            found.append((path, document, test))
    return found


@pytest.mark.parametrize("alert", [a for a in ALERTS], ids=lambda a: a["alert"])
def test_every_alert_is_tested_quiet_one_evaluation_before_its_for_ends_and_firing_when_it_does(alert):
    name = alert["alert"]
    both_sides = []
    for _path, document, test in unit_tests():
        interval = duration(document.get("evaluation_interval", "1m"))
        checks = [c for c in test.get("alert_rule_test", []) if c["alertname"] == name]
        quiet = {duration(c["eval_time"]) for c in checks if not c.get("exp_alerts")}
        firing = {duration(c["eval_time"]) for c in checks if c.get("exp_alerts")}
        both_sides += [(test["name"], t) for t in firing if t - interval in quiet]
    assert both_sides, f"{name} (for: {alert.get('for')}) has no test quiet one evaluation before firing"


@pytest.mark.parametrize("alert", [a for a in ALERTS], ids=lambda a: a["alert"])
def test_every_alert_has_a_test_where_a_healthy_system_keeps_it_quiet(alert):
    quiet_only = [test["name"] for _, _, test in unit_tests()
                  if (checks := [c for c in test.get("alert_rule_test", []) if c["alertname"] == alert["alert"]])
                  and not any(c.get("exp_alerts") for c in checks)]
    assert quiet_only, f"{alert['alert']} has no test of a situation that must not fire it"


def test_unit_test_names_are_sentences():
    for _, _, test in unit_tests():
        assert re.fullmatch(r"[A-Z][^.]*[a-z0-9)]", test["name"]) and len(test["name"].split()) >= 6, test["name"]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["record"])
def test_every_recording_rule_has_an_expected_value_in_a_test(record):
    tested = {check["expr"] for _, _, test in unit_tests() for check in test.get("promql_expr_test", [])
              if check.get("exp_samples")}
    assert record["record"] in tested
