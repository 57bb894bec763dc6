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

    environment: Literal["development", "test", "production"] = Field(
        "development", description="production refuses the development secrets below."
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: coloured key=value on a terminal, JSON lines otherwise."
    )

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka brokers, host:port[,host:port]. Set: make run uses it, starts none."
    )
    kafka_replication_factor: int = Field(
        1, ge=1, description="Replicas of the topics `pantau bootstrap` creates (from contracts/asyncapi.yaml)."
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "exactly_once", description="The processor's guarantee; exactly_once uses Kafka transactions."
    )
    producer_buffer_max_seconds: float = Field(
        30.0, gt=0, description="How long producers buffer events Kafka has not acknowledged before they fail loudly."
    )

    # --- Database ----------------------------------------------------------------------------
    database_url: str = Field(
        f"postgresql://pantau:{DEV_DATABASE_PASSWORD}@127.0.0.1:55432/pantau",
        description="PostgreSQL (with TimescaleDB where installed). Set: make run uses it, starts none.",
    )
    database_reader_password: str = Field(
        DEV_READER_PASSWORD, description="Password `pantau bootstrap` gives the read-only role pantau_reader (Grafana)."
    )
    retention_days: int = Field(400, ge=1, description="Days of events the database keeps.")

    # --- Prometheus --------------------------------------------------------------------------
    prometheus_url: str = Field(
        "http://127.0.0.1:9090", description="Prometheus (live counts of make run). Set: make run starts none."
    )

    # --- Service ports (metrics and /healthz; the HTTP services serve them on their own port) --
    simulator_port: int = Field(9101, description="Simulator's /metrics and /healthz.")
    processor_port: int = Field(9102, description="Processor's /metrics and /healthz.")
    sink_port: int = Field(9103, description="Sink's /metrics and /healthz.")
    dispatcher_port: int = Field(9104, description="Dispatcher's /metrics and /healthz.")
    gateway_port: int = Field(8001, description="Ingest gateway (HTTP API, /docs, /metrics, /healthz).")
    api_port: int = Field(8000, description="Query API (HTTP API, /docs, /metrics, /healthz).")
    service_host: str = Field("127.0.0.1", description="Interface the services listen on; 0.0.0.0 in containers.")

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
    processor_app_id: str = Field(
        "pantau-processor",
        description="Faust app id: consumer group, transactional ids, prefix of its changelog and repartition topics.",
    )
    processor_topic_prefix: str = Field(
        "", description="Prepended to the contract topic names (tests use a fresh one); empty in deployments."
    )
    processor_late_tolerance_hours: float = Field(
        72.0, ge=0, description="Events this much older than their series' newest still count; older: dead-lettered."
    )
    processor_batch_max_events: int = Field(
        2000, ge=1, description="Events per processing batch at most (a batch is what came in meanwhile)."
    )
    processor_session_timeout_seconds: float = Field(
        10.0, ge=2, description="Consumer group session timeout: a dead worker's partitions move after about this."
    )
    processor_tick_seconds: float = Field(
        1.0, gt=0, description="Wall-clock timer that lets event time pass on idle partitions and refreshes lag."
    )
    processor_tick_event_minutes: float = Field(
        15.0,
        gt=0,
        description="Event time between two runs of the time-driven detectors (overdue, stock); also the most a "
        "supply, route or harvest record waits in a batch for its key's judgement.",
    )
    processor_unassigned_unhealthy_seconds: float = Field(
        120.0, gt=0, description="/healthz turns unhealthy after the worker has had no partition this long."
    )
    processor_data_dir: Path = Field(
        REPO_ROOT / ".local" / "processor", description="Faust's local table state (rebuilt from changelogs)."
    )

    # --- Sink --------------------------------------------------------------------------------
    # Consumer group of the sink (tests run a sink in a fresh group on the shared broker).
    sink_consumer_group: str = Field("pantau-sink", description="Kafka consumer group of the sink.")
    sink_batch_max_rows: int = Field(5000, ge=1, description="Rows per database batch at most.")
    sink_batch_max_seconds: float = Field(0.5, gt=0, description="How long a batch waits to fill before it is written.")

    # --- API, gateway and dispatcher ---------------------------------------------------------
    admin_token: str = Field(DEV_ADMIN_TOKEN, description="Bearer token of the API's admin endpoints (API keys).")
    webhook_secret_key: str = Field(
        DEV_WEBHOOK_SECRET_KEY, description="Master key the webhook signing secrets are derived from."
    )
    api_rate_limit_per_minute: int = Field(120, ge=1, description="Requests per minute per API key or client.")
    dispatcher_max_attempts: int = Field(
        30, ge=1, description="Webhook attempts before a delivery is dead-lettered (30: almost an hour of outage)."
    )
    dispatcher_backoff_initial_seconds: float = Field(1.0, gt=0, description="First retry delay of a webhook.")
    dispatcher_backoff_max_seconds: float = Field(300.0, gt=0, description="Longest retry delay of a webhook.")

    # --- Embedded local stack (make run / tests) ---------------------------------------------
    local_dir: Path = Field(REPO_ROOT / ".local", description="State of make run: topics, database, metrics, logs.")
    local_kafka: bool | None = Field(
        None, description="Start the embedded Kafka? Unset: unless KAFKA_BOOTSTRAP_SERVERS is set. true with "
        "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092 moves it to another port."
    )  # fmt: skip
    local_postgres: bool | None = Field(
        None, description="Start the embedded PostgreSQL? Unset: unless DATABASE_URL is set."
    )
    local_prometheus: bool | None = Field(
        None, description="Start the embedded Prometheus? Unset: unless PROMETHEUS_URL is set."
    )

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


def settings_table() -> str:
    """The README's configuration table, generated from the fields (a test keeps the README equal)."""
    rows = ["| Variable | Default | What it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, Path):
            default = default.relative_to(REPO_ROOT) if default.is_relative_to(REPO_ROOT) else default
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)
