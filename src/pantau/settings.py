"""The one settings object. Nothing else in the code base reads the environment.

Every field is an environment variable of the same name in upper case (KAFKA_BOOTSTRAP_SERVERS,
DATABASE_URL, ...). Defaults are the embedded local stack that `make run` starts; docker-compose
sets the same names to its own hosts.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

# Secrets that only the local stack may use; refused outside development.
DEV_DATABASE_PASSWORD = "pantau-dev"
DEV_READER_PASSWORD = "pantau-reader-dev"
DEV_ADMIN_TOKEN = "pantau-admin-dev"
DEV_WEBHOOK_SECRET_KEY = "pantau-webhook-key-dev"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Topics are created by `pantau bootstrap` from contracts/asyncapi.yaml; 1 replica locally.
    kafka_replication_factor: int = Field(1, ge=1)
    # exactly_once needs Kafka transactions (real Apache Kafka, local and in compose).
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "exactly_once"
    producer_buffer_max_seconds: float = Field(30.0, gt=0)

    # --- Database ----------------------------------------------------------------------------
    database_url: str = f"postgresql://pantau:{DEV_DATABASE_PASSWORD}@127.0.0.1:55432/pantau"
    # Read-only role for Grafana and the query API's reads.
    database_reader_password: str = DEV_READER_PASSWORD
    retention_days: int = Field(400, ge=1)

    # --- Prometheus --------------------------------------------------------------------------
    prometheus_url: str = "http://127.0.0.1:9090"

    # --- Service ports (metrics and /healthz; the HTTP services serve them on their own port) --
    simulator_port: int = 9101
    processor_port: int = 9102
    sink_port: int = 9103
    dispatcher_port: int = 9104
    gateway_port: int = 8001
    api_port: int = 8000
    # Interface the services listen on; 0.0.0.0 inside containers.
    service_host: str = "127.0.0.1"

    # --- Simulator ---------------------------------------------------------------------------
    simulator_seed: int = Field(
        42, description="Seed of the simulation: the same seed, start and scenario file give the same events and ids."
    )
    simulator_speed: float = Field(
        600.0, gt=0, description="Simulated seconds per wall-clock second (while catching up, or always without "
        "following the wall clock)."
    )  # fmt: skip
    simulator_start: str | None = Field(
        None, description="RFC 3339 start of the simulation, e.g. 2026-03-01T00:00:00+07:00 (evaluations). Unset: "
        "the first run starts at local midnight WIB SIMULATOR_BACKFILL_DAYS days ago and later runs keep the start "
        "of their checkpoint."
    )  # fmt: skip
    simulator_backfill_days: int = Field(
        14, ge=0, description="Days of history the first run simulates before today when SIMULATOR_START is unset."
    )
    simulator_follow_wall_clock: bool | None = Field(
        None, description="true: run at SIMULATOR_SPEED until the simulated clock reaches the wall clock, then "
        "follow it (catch up, then live). false: SIMULATOR_SPEED forever. Unset: true without SIMULATOR_START, "
        "false with it."
    )  # fmt: skip
    simulator_state_dir: Path | None = Field(
        None, description="Where the simulator keeps its checkpoint (and, by default, the ground truth) so that a "
        "restart resumes where it stopped. Unset: LOCAL_DIR/simulator. Mount a volume here in containers."
    )  # fmt: skip
    simulator_scenario_file: Path = Field(
        REPO_ROOT / "scenarios" / "demo.yaml",
        description="YAML scenario file (scenarios/*.yaml); offsets in it count from the start. 'none': no scenarios.",
    )
    simulator_ground_truth_file: Path | None = Field(
        None, description="JSON lines, one per alert a scenario expects, appended as the simulation reaches each "
        "onset (a resumed run appends, never twice the same line). Unset: SIMULATOR_STATE_DIR/ground_truth.jsonl."
    )  # fmt: skip

    # --- Processor ---------------------------------------------------------------------------
    processor_late_tolerance_hours: float = Field(72.0, ge=0)
    processor_data_dir: Path = REPO_ROOT / ".local" / "processor"

    # --- Sink --------------------------------------------------------------------------------
    # Consumer group of the sink (tests run a sink in a fresh group on the shared broker).
    sink_consumer_group: str = "pantau-sink"
    sink_batch_max_rows: int = Field(5000, ge=1)
    sink_batch_max_seconds: float = Field(0.5, gt=0)

    # --- API, gateway and dispatcher ---------------------------------------------------------
    admin_token: str = DEV_ADMIN_TOKEN
    webhook_secret_key: str = DEV_WEBHOOK_SECRET_KEY
    api_rate_limit_per_minute: int = Field(120, ge=1)
    dispatcher_max_attempts: int = Field(30, ge=1)
    dispatcher_backoff_initial_seconds: float = Field(1.0, gt=0)
    dispatcher_backoff_max_seconds: float = Field(300.0, gt=0)

    # --- Embedded local stack (make run / tests) ---------------------------------------------
    local_dir: Path = REPO_ROOT / ".local"
    # Start the embedded part? Unset: yes unless its address variable (KAFKA_BOOTSTRAP_SERVERS,
    # DATABASE_URL, PROMETHEUS_URL) is set. LOCAL_KAFKA=true with KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092
    # moves the embedded broker to another port.
    local_kafka: bool | None = None
    local_postgres: bool | None = None
    local_prometheus: bool | None = None

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_development(self) -> Settings:
        if self.environment != "production":
            return self
        leaked = [
            name
            for name, dev_value in (
                ("DATABASE_URL", DEV_DATABASE_PASSWORD),
                ("DATABASE_READER_PASSWORD", DEV_READER_PASSWORD),
                ("ADMIN_TOKEN", DEV_ADMIN_TOKEN),
                ("WEBHOOK_SECRET_KEY", DEV_WEBHOOK_SECRET_KEY),
            )
            if dev_value in str(getattr(self, name.lower()))
        ]
        if leaked:
            raise ValueError(f"ENVIRONMENT=production but these still hold development secrets: {leaked}")
        return self

    @cached_property
    def kafka_address(self) -> tuple[str, int]:
        """Host and port of the first bootstrap server."""
        first = self.kafka_bootstrap_servers.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port)

    @cached_property
    def database_address(self) -> tuple[str, int]:
        parts = urlsplit(self.database_url)
        return parts.hostname or "127.0.0.1", parts.port or 5432

    @cached_property
    def prometheus_address(self) -> tuple[str, int]:
        parts = urlsplit(self.prometheus_url)
        return parts.hostname or "127.0.0.1", parts.port or 9090


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; keyword overrides win (tests use them)."""
    return Settings(**overrides)
