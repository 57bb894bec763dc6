"""The production path (docker-compose.yml, Dockerfile, Prometheus config) cannot run here (no Docker
engine), so it is proven statically: the compose file is valid, holds no secrets, and runs every
service `make run` runs, with the same settings names and versions as the local stack."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from pantau.devstack import SERVICES
from pantau.settings import REPO_ROOT, Settings

COMPOSE = REPO_ROOT / "docker-compose.yml"
SECRETS = ("POSTGRES_PASSWORD", "DATABASE_READER_PASSWORD", "ADMIN_TOKEN", "WEBHOOK_SECRET_KEY",
           "GRAFANA_ADMIN_PASSWORD")
SETTINGS_NAMES = {name.upper() for name in Settings.model_fields}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose (Debian package) is missing: run make setup"
    return subprocess.run(
        [docker_compose, "-f", str(COMPOSE), "config"],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], **env}, cwd=REPO_ROOT,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    result = compose_config({name: f"test-{name.lower()}" for name in SECRETS})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_for_docker_compose(resolved):
    assert {"kafka", "timescaledb", "prometheus", "grafana", "bootstrap"} <= set(resolved["services"])


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_refuses_to_start_without_each_secret(secret):
    env = {name: "x" for name in SECRETS if name != secret}
    result = compose_config(env)
    assert result.returncode != 0
    assert secret in result.stderr


def test_compose_file_holds_no_secret_values():
    text = COMPOSE.read_text()
    for secret in SECRETS:
        for match in re.finditer(rf"^\s*{secret}:\s*(\S+)", text, re.MULTILINE):
            assert match.group(1).startswith("${"), f"{secret} has a literal value in docker-compose.yml"
    assert "pantau-dev" not in text


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_local_service_runs_in_compose_with_the_same_settings(resolved, service):
    spec = resolved["services"].get(service.name)
    assert spec, f"{service.name} is started by make run but missing from docker-compose.yml"
    assert spec["command"] == ["python", "-m", f"services.{service.name}"]
    env = spec["environment"]
    assert service.port_variable in env, f"{service.name} must set {service.port_variable}"
    unknown = set(env) - SETTINGS_NAMES
    assert not unknown, f"{service.name} sets variables that no setting reads: {unknown}"
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "PROMETHEUS_URL", "ENVIRONMENT"):
        assert name in env
    assert env["ENVIRONMENT"] == "production"
    assert spec["healthcheck"]["test"] == ["CMD", "pantau", "health", service.name]
    assert spec["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"


def test_compose_services_use_named_volumes_for_state(resolved):
    for name in ("kafka", "timescaledb", "prometheus", "grafana"):
        sources = [mount.split(":")[0] for mount in resolved["services"][name]["volumes"]]
        assert set(sources) & set(resolved["volumes"]), f"{name} keeps its state in a named volume"


def test_compose_kafka_is_the_version_the_local_broker_runs(resolved):
    pom = (REPO_ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    local_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
    assert resolved["services"]["kafka"]["image"] == f"apache/kafka:{local_version}"


def test_prometheus_scrapes_every_service_on_its_compose_port(resolved):
    config = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    for service in SERVICES:
        port = resolved["services"][service.name]["environment"][service.port_variable]
        assert targets.get(service.name) == [f"{service.name}:{port}"]
    mounts = resolved["services"]["prometheus"]["volumes"]
    assert f"{REPO_ROOT}/deploy/prometheus:/etc/prometheus:ro" in mounts


def test_prometheus_config_passes_promtool():
    result = subprocess.run(
        ["promtool", "check", "config", str(REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_service_defaults_match_local_ports(resolved):
    defaults = Settings()
    for service in SERVICES:
        env = resolved["services"][service.name]["environment"]
        assert int(env[service.port_variable]) == service.port(defaults)


def test_the_image_holds_every_repository_folder_the_code_reads_at_run_time():
    """Code finds contracts, scenarios and data through REPO_ROOT; the image must copy them."""
    import ast

    copied = set(re.findall(r"^COPY (\S+) \./", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE))
    needed = set()
    for path in [*(REPO_ROOT / "src").rglob("*.py"), *(REPO_ROOT / "services").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
                    and isinstance(node.left, ast.Name) and node.left.id == "REPO_ROOT"
                    and isinstance(node.right, ast.Constant)):
                needed.add(node.right.value)
    # State (a volume), local-stack tooling, and the dashboards (mounted into Grafana, checked by tests).
    needed -= {".local", "deploy", "grafana"}
    assert needed <= copied, f"Dockerfile must COPY {sorted(needed - copied)}"
