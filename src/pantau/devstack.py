"""The embedded local stack: Apache Kafka (KRaft, from Maven's jars), PostgreSQL 15 with TimescaleDB,
Prometheus, and every service, supervised by supervisord. `make run` / `make stop` / `make status`.

Each infrastructure part is started only when its variable (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL,
PROMETHEUS_URL) is not set in the environment; set it to use an external system instead. The test
fixtures start the same infrastructure parts (on other ports) through `LocalInfra`.
"""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from pantau.settings import REPO_ROOT, Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
KAFKA_LIBS = REPO_ROOT / ".local" / "kafka" / "libs"  # fetched by make setup
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
PYTHON = sys.executable


class StackError(RuntimeError):
    """A problem the person running the stack can fix; the message says how."""


@dataclass(frozen=True)
class Service:
    """A long-running service of the system: `python -m services.<name>`, serving /metrics and
    /healthz on the port held by the setting `<name>_port`."""

    name: str
    description: str

    @property
    def port_setting(self) -> str:
        return f"{self.name}_port"

    @property
    def port_variable(self) -> str:
        return self.port_setting.upper()

    def port(self, settings: Settings) -> int:
        return getattr(settings, self.port_setting)

    @property
    def exists(self) -> bool:
        return (REPO_ROOT / "services" / self.name / "__main__.py").exists()


# Every long-running service; docker-compose.yml and deploy/prometheus/prometheus.yml list the same.
SERVICES = (
    Service("simulator", "simulated harvests, shipments and prices"),
    Service("gateway", "HTTP ingest for partners"),
    Service("processor", "Faust stream processors: spikes, supply gaps, route disruptions"),
    Service("sink", "writes events and alerts to TimescaleDB"),
    Service("api", "query API, subscriptions, live alert stream"),
    Service("dispatcher", "delivers alerts to distributors' webhooks"),
)


def existing_services() -> list[Service]:
    return [s for s in SERVICES if s.exists]


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


@dataclass
class Component:
    """An infrastructure process: how to run it and how to tell it is ready."""

    name: str
    argv: list[str]
    host: str
    port: int
    port_variable: str
    ready: Callable[[], bool]
    user: str | None = None
    stopsignal: str = "TERM"


def kafka_cluster_id() -> str:
    """A random Kafka cluster id (base64 of a UUID). Like Kafka's own Uuid.randomUuid, never one that
    starts with "-": the storage tool's argument parser takes that for an option (1 in 64 did)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class LocalInfra:
    """Kafka, PostgreSQL and Prometheus as local processes with their state under `base_dir`."""

    def __init__(self, settings: Settings, base_dir: Path) -> None:
        self.settings = settings
        self.base = base_dir
        self.run_as = "postgres" if os.geteuid() == 0 else None

    # --- Kafka ----------------------------------------------------------------------------------
    def kafka(self) -> Component:
        host, port = self.settings.kafka_address
        data = self.base / "kafka"
        config = data / "server.properties"
        argv = [
            "java",
            "-Xms256m",
            "-Xmx512m",
            f"-Dlog4j2.configurationFile={REPO_ROOT / 'deploy' / 'kafka' / 'log4j2.properties'}",
            "-cp",
            f"{KAFKA_LIBS}/*",
            "kafka.Kafka",
            str(config),
        ]
        return Component("kafka", argv, host, port, "KAFKA_BOOTSTRAP_SERVERS", lambda: port_is_open(host, port))

    def prepare_kafka(self) -> None:
        """Write server.properties and format the log directory on first run."""
        if not any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
            raise StackError(f"Apache Kafka jars are missing in {KAFKA_LIBS}; run `make setup`")
        host, port = self.settings.kafka_address
        data = self.base / "kafka"
        logs = data / "data"
        data.mkdir(parents=True, exist_ok=True)
        controller = port + 1
        (data / "server.properties").write_text(
            "\n".join(
                [
                    "# Written by pantau.devstack: a single-node KRaft broker for local runs and tests.",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={host}:{controller}",
                    f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
                    f"advertised.listeners=PLAINTEXT://{host}:{port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={logs}",
                    "num.partitions=1",
                    # Topics come from contracts/asyncapi.yaml; a typo must not create a new one.
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=10",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=-1",
                    "",
                ]
            )
        )
        if not (logs / "meta.properties").exists():
            cluster_id = kafka_cluster_id()
            result = subprocess.run(
                [
                    "java",
                    "-cp",
                    f"{KAFKA_LIBS}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    "-t",
                    cluster_id,
                    "-c",
                    str(data / "server.properties"),
                ],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise StackError(f"formatting Kafka storage in {logs} failed:\n{result.stdout}{result.stderr}")

    # --- PostgreSQL -----------------------------------------------------------------------------
    @property
    def pg_data(self) -> Path:
        return self.base / "postgres" / "data"

    @property
    def pg_socket_dir(self) -> Path:
        return self.base / "postgres" / "run"

    @staticmethod
    def timescaledb_installed() -> bool:
        pkglib = subprocess.run([PG_BIN / "pg_config", "--pkglibdir"], capture_output=True, text=True)
        return pkglib.returncode == 0 and (Path(pkglib.stdout.strip()) / "timescaledb.so").exists()

    def postgres(self) -> Component:
        host, port = self.settings.database_address
        argv = [
            str(PG_BIN / "postgres"),
            "-D",
            str(self.pg_data),
            "-p",
            str(port),
            "-k",
            str(self.pg_socket_dir),
            "-c",
            f"listen_addresses={host}",
            "-c",
            "max_connections=200",
        ]
        if self.timescaledb_installed():
            argv += ["-c", "shared_preload_libraries=timescaledb", "-c", "timescaledb.telemetry_level=off"]
        return Component(
            "postgres",
            argv,
            host,
            port,
            "DATABASE_URL",
            lambda: self._pg_ready(port),
            user=self.run_as,
            stopsignal="INT",  # "fast" shutdown; TERM would wait for every client to leave
        )

    def _pg_ready(self, port: int) -> bool:
        result = subprocess.run(
            [PG_BIN / "pg_isready", "-q", "-h", str(self.pg_socket_dir), "-p", str(port)], capture_output=True
        )
        return result.returncode == 0

    def prepare_postgres(self) -> None:
        """initdb on first run, as the postgres user when we are root (PostgreSQL refuses root)."""
        if not (PG_BIN / "postgres").exists():
            raise StackError(f"PostgreSQL 15 server is not installed ({PG_BIN}); run `make setup`")
        self.pg_socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.pg_socket_dir)
        if (self.pg_data / "PG_VERSION").exists():
            return
        self.pg_data.mkdir(parents=True, exist_ok=True)
        self._chown(self.pg_data)
        self.pg_data.chmod(0o700)
        result = subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(self.pg_data), "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"],
            capture_output=True,
            text=True,
            user=self.run_as,
        )
        if result.returncode != 0:
            raise StackError(f"initdb in {self.pg_data} failed:\n{result.stdout}{result.stderr}")

    def _chown(self, path: Path) -> None:
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        _, port = self.settings.database_address
        return f"host={self.pg_socket_dir} port={port} user=postgres dbname={dbname}"

    def provision_database(self, database_url: str, timescaledb: bool = True) -> None:
        """Create the role and database of `database_url` (idempotent), with TimescaleDB when asked
        and installed. Needs the local superuser socket, so only for the embedded server."""
        import psycopg

        parts = urlsplit(database_url)
        role, password = unquote(parts.username or "pantau"), unquote(parts.password or "")
        dbname = parts.path.lstrip("/") or role
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f'CREATE ROLE "{role}" LOGIN CREATEROLE PASSWORD %s'.replace("%s", _sql_literal(password)))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                conn.execute(f'CREATE DATABASE "{dbname}" OWNER "{role}"')
        if timescaledb and self.timescaledb_installed():
            with psycopg.connect(self.superuser_dsn(dbname), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")

    def drop_database(self, dbname: str) -> None:
        import psycopg

        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    # --- Prometheus -----------------------------------------------------------------------------
    def prometheus(self) -> Component:
        host, port = self.settings.prometheus_address
        data = self.base / "prometheus"
        argv = [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={data / 'prometheus.yml'}",
            f"--storage.tsdb.path={data / 'data'}",
            f"--web.listen-address={host}:{port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=15d",
        ]
        return Component(
            "prometheus", argv, host, port, "PROMETHEUS_URL", lambda: http_ok(f"http://{host}:{port}/-/ready")
        )

    def prepare_prometheus(self, services: list[Service], scrape_interval: str = "5s") -> Path:
        """Render deploy/prometheus/prometheus.yml (the compose file) for local ports: same jobs and
        rule files, targets rewritten to SERVICE_HOST and each service's port setting."""
        if not shutil.which("prometheus"):
            raise StackError("prometheus is not installed; run `make setup`")
        config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
        config["rule_files"] = [str((PROMETHEUS_CONFIG.parent / f).resolve()) for f in config.get("rule_files", [])]
        by_name = {s.name: s for s in services}
        jobs = []
        for job in config["scrape_configs"]:
            name = job["job_name"]
            if name == "prometheus":
                job["static_configs"] = [{"targets": [f"{self.settings.prometheus_address[0]}:"
                                                      f"{self.settings.prometheus_address[1]}"]}]
            elif name in by_name:
                target = f"{self.settings.service_host}:{by_name[name].port(self.settings)}"
                job["static_configs"] = [{"targets": [target]}]
            else:
                continue  # a service that does not exist yet in this checkout
            jobs.append(job)
        config["scrape_configs"] = jobs
        data = self.base / "prometheus"
        data.mkdir(parents=True, exist_ok=True)
        (data / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        return data / "prometheus.yml"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def check_port_free(host: str, port: int, what: str, variable: str) -> None:
    if port_is_open(host, port):
        raise StackError(
            f"port {port} on {host} ({what}) is already in use; stop what holds it, or set {variable} "
            "to move it (see README, Configuration)"
        )


def _moving_hint(component: Component) -> str:
    flag = {"kafka": "LOCAL_KAFKA", "postgres": "LOCAL_POSTGRES", "prometheus": "LOCAL_PROMETHEUS"}[component.name]
    return f"{component.port_variable} (with {flag}=true to keep it embedded, alone to use the server already there)"


# --- supervisord ---------------------------------------------------------------------------------
class Supervisor:
    """Writes the supervisord config for the stack and talks to it over its unix socket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.run_dir = settings.local_dir / "run"
        self.log_dir = settings.local_dir / "logs"
        self.conf = self.run_dir / "supervisord.conf"
        self.socket = self.run_dir / "supervisor.sock"

    def rpc(self) -> xmlrpc.client.ServerProxy:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.rpc().supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Fault):
            return False

    def write_config(self, infra: list[Component], services: list[Service]) -> None:
        """Programs inherit supervisord's environment, so every setting reaches every service."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        sections = [
            "; Written by pantau.devstack for `make run`; edit the code, not this file.",
            "[supervisord]",
            "nodaemon=true",
            f"logfile={self.log_dir / 'supervisord.log'}",
            f"pidfile={self.run_dir / 'supervisord.pid'}",
            f"childlogdir={self.log_dir}",
            "loglevel=warn",
            "",
            "[unix_http_server]",
            f"file={self.socket}",
            "chmod=0700",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.socket}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
        ]

        def program(name: str, command: str, *, priority: int, autostart: bool, one_shot: bool = False,
                    user: str | None = None, stopsignal: str = "TERM") -> list[str]:
            lines = [
                f"[program:{name}]",
                f"command={command}",
                f"directory={REPO_ROOT}",
                f"priority={priority}",
                f"autostart={'true' if autostart else 'false'}",
                f"autorestart={'unexpected' if one_shot else 'true'}",
                f"startsecs={0 if one_shot else 3}",
                "startretries=5",
                f"stopsignal={stopsignal}",
                "stopwaitsecs=30",
                "stopasgroup=true",
                "killasgroup=true",
                f"stdout_logfile={self.log_dir / (name + '.log')}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=2",
                "redirect_stderr=true",
            ]
            if user:
                lines.append(f"user={user}")
            return [*lines, ""]

        for component in infra:
            command = " ".join(_quote(a) for a in component.argv)
            sections += program(component.name, command, priority=10, autostart=True, user=component.user,
                                stopsignal=component.stopsignal)
        sections += program("bootstrap", f"{PYTHON} -m pantau.cli bootstrap", priority=20, autostart=False,
                            one_shot=True)
        for service in services:
            sections += program(service.name, f"{PYTHON} -m services.{service.name}", priority=30,
                                autostart=False)
        self.conf.write_text("\n".join(sections))

    def start(self) -> subprocess.Popen:
        # Own session: Ctrl-C reaches only `make run`, which then shuts supervisord down in order.
        return subprocess.Popen(
            [PYTHON, "-m", "supervisor.supervisord", "-c", str(self.conf)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_dir / "supervisord.stderr", "ab"),  # noqa: SIM115 (lives with the child)
        )

    def wait_until_up(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.running():
            if time.monotonic() > deadline:
                raise StackError(f"supervisord did not start; see {self.log_dir / 'supervisord.log'}")
            time.sleep(0.2)

    def shutdown(self, timeout_s: float = 90.0) -> bool:
        """Stop every program and supervisord itself; True when it was running."""
        if not self.running():
            return False
        pid_file = self.run_dir / "supervisord.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        try:
            self.rpc().supervisor.shutdown()
        except (OSError, xmlrpc.client.Fault):
            pass
        deadline = time.monotonic() + timeout_s
        while pid and _pid_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _quote(arg: str) -> str:
    return f'"{arg}"' if any(c in arg for c in " *;") else arg


# --- make run / stop / status ----------------------------------------------------------------------
def embedded_parts(settings: Settings) -> dict[str, bool]:
    """Which infrastructure parts `make run` starts itself: those whose variable is not set."""
    explicit = settings.model_fields_set

    def decide(flag: bool | None, address_field: str) -> bool:
        return flag if flag is not None else address_field not in explicit

    return {
        "kafka": decide(settings.local_kafka, "kafka_bootstrap_servers"),
        "postgres": decide(settings.local_postgres, "database_url"),
        "prometheus": decide(settings.local_prometheus, "prometheus_url"),
    }


def _say(message: str) -> None:
    print(message, flush=True)


def _wait_ready(component: Component, supervisor: Supervisor, timeout_s: float) -> None:
    started = time.monotonic()
    while not component.ready():
        if time.monotonic() - started > timeout_s:
            raise StackError(
                f"{component.name} did not become ready on port {component.port} within {timeout_s:.0f}s; "
                f"see {supervisor.log_dir / (component.name + '.log')}"
            )
        info = supervisor.rpc().supervisor.getProcessInfo(component.name)
        if info["statename"] in ("FATAL", "BACKOFF", "EXITED"):
            raise StackError(
                f"{component.name} exited while starting; see {supervisor.log_dir / (component.name + '.log')}"
            )
        time.sleep(0.3)
    _say(f"  {component.name:<10} ready on {component.host}:{component.port} ({time.monotonic() - started:.1f}s)")


def _run_bootstrap(supervisor: Supervisor, timeout_s: float = 180.0) -> None:
    rpc = supervisor.rpc()
    rpc.supervisor.startProcess("bootstrap", False)
    deadline = time.monotonic() + timeout_s
    log = supervisor.log_dir / "bootstrap.log"
    while True:
        info = rpc.supervisor.getProcessInfo("bootstrap")
        if info["statename"] == "EXITED" and info["exitstatus"] == 0:
            _say("  bootstrap  topics created, database migrated")
            return
        if info["statename"] in ("FATAL", "BACKOFF") or (info["statename"] == "EXITED" and info["exitstatus"]):
            raise StackError(f"bootstrap failed: {_last_error_line(log)}\n(full log: {log})")
        if time.monotonic() > deadline:
            raise StackError(f"bootstrap did not finish in {timeout_s:.0f}s; see {log}")
        time.sleep(0.3)


def _last_error_line(log: Path) -> str:
    """The exception line of a Python traceback at the end of a log."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if not line[0].isspace() and not line.startswith("Traceback")]
    return errors[-1] if errors else "(empty log)"


def preflight(settings: Settings, infra: list[Component], services: list[Service]) -> None:
    for component in infra:
        check_port_free(component.host, component.port, f"embedded {component.name}", _moving_hint(component))
    for service in services:
        check_port_free(settings.service_host, service.port(settings), f"service {service.name}",
                        service.port_variable)


def run(settings: Settings, counts_every_s: float = 5.0) -> int:
    """`make run`: start everything in the foreground; Ctrl-C (or `make stop`) stops everything."""
    supervisor = Supervisor(settings)
    if supervisor.running():
        raise StackError("the stack is already running (see `make status`); stop it with `make stop`")
    parts = embedded_parts(settings)
    infra_dir = settings.local_dir
    local = LocalInfra(settings, infra_dir)
    services = existing_services()
    infra = [
        c
        for name, make in (("kafka", local.kafka), ("postgres", local.postgres), ("prometheus", local.prometheus))
        if parts[name]
        for c in [make()]
    ]
    preflight(settings, infra, services)
    _say(f"Pantau Pangan: starting the local stack (state in {_shown(infra_dir)}/, logs in {_shown(infra_dir)}/logs/)")
    address_variables = {"kafka": "KAFKA_BOOTSTRAP_SERVERS", "postgres": "DATABASE_URL", "prometheus": "PROMETHEUS_URL"}
    for name, embedded in parts.items():
        if not embedded:
            _say(f"  {name:<10} external: {address_variables[name]} is set")
    if parts["kafka"]:
        local.prepare_kafka()
    if parts["postgres"]:
        local.prepare_postgres()
        if not local.timescaledb_installed():
            _say("  warning: TimescaleDB is not installed, running on plain PostgreSQL (make setup builds it)")
    if parts["prometheus"]:
        local.prepare_prometheus(services)
    supervisor.write_config(infra, services)
    process = supervisor.start()

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the stack the same way Ctrl-C does

    signal.signal(signal.SIGTERM, interrupt)
    try:
        supervisor.wait_until_up()
        for component in infra:
            _wait_ready(component, supervisor, timeout_s=120)
        if parts["postgres"]:
            local.provision_database(settings.database_url)
        _run_bootstrap(supervisor)
        rpc = supervisor.rpc()
        for service in services:
            rpc.supervisor.startProcess(service.name, False)
            _say(f"  {service.name:<10} started: {service.description}")
        _print_banner(settings, services)
        counter = LiveCounts(settings)
        while process.poll() is None:
            _say(counter.line(_failed_programs(supervisor)))
            deadline = time.monotonic() + counts_every_s
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        _say("supervisord stopped (make stop): everything is down")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if process.poll() is None:
            _say("stopping: services, then Prometheus, PostgreSQL and Kafka ...")
            supervisor.shutdown()
        process.wait(timeout=30)
        _say("stopped; no stack process is left running")
    return 0


def _failed_programs(supervisor: Supervisor) -> list[str]:
    try:
        infos = supervisor.rpc().supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Fault):
        return []
    return [i["name"] for i in infos if i["statename"] in ("FATAL", "BACKOFF") and i["name"] != "bootstrap"]


class LiveCounts:
    """The one-line progress of `make run`, from Prometheus (what Grafana would show)."""

    QUERIES = {
        "produced": "sum(pantau_events_produced_total)",
        "processed": 'sum(pantau_events_consumed_total{job="processor", topic=~"pangan[.].*"})',
        "stored": "sum(pantau_sink_rows_written_total)",
        "alerts": "sum(pantau_alerts_emitted_total)",
        "dead-lettered": "sum(pantau_events_deadlettered_total)",
    }

    def __init__(self, settings: Settings) -> None:
        self.url = settings.prometheus_url.rstrip("/")

    def value(self, query: str) -> str:
        import json
        from urllib.parse import urlencode

        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{urlencode({'query': query})}", timeout=2) as r:
                result = json.load(r)["data"]["result"]
        except (OSError, ValueError, KeyError):
            return "?"
        return f"{float(result[0]['value'][1]):,.0f}" if result else "0"

    def line(self, failed: list[str]) -> str:
        counts = "  ".join(f"{name} {self.value(q)}" for name, q in self.QUERIES.items())
        stamp = time.strftime("%H:%M:%S")
        problem = f"  | NOT RUNNING: {', '.join(failed)} (see .local/logs/)" if failed else ""
        return f"[{stamp}] {counts}{problem}"


def _print_banner(settings: Settings, services: list[Service]) -> None:
    host = settings.service_host
    names = {s.name for s in services}
    lines = ["", "Pantau Pangan is running. Where to look:"]
    if "api" in names:
        lines.append(f"  Query API docs     http://{host}:{settings.api_port}/docs")
    if "gateway" in names:
        lines.append(f"  Ingest gateway     http://{host}:{settings.gateway_port}/docs")
    lines += [
        f"  Prometheus         {settings.prometheus_url}  (targets: {settings.prometheus_url}/targets)",
        f"  TimescaleDB        {_without_password(settings.database_url)}",
        "  Alerts as they arrive:   .venv/bin/pantau tail pangan.alert.v1",
        f"  Logs: {_shown(settings.local_dir)}/logs/<service>.log    Status: make status    Stop: Ctrl-C or make stop",
        "",
    ]
    _say("\n".join(lines))


def _shown(path: Path) -> str:
    """A path as a user in the repository would type it."""
    return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}" if parts.username else parts.netloc
    return parts._replace(netloc=netloc).geturl()


def stop(settings: Settings) -> int:
    supervisor = Supervisor(settings)
    if supervisor.shutdown():
        _say("stack stopped")
    else:
        _say("the stack is not running")
    return 0


def status(settings: Settings) -> int:
    supervisor = Supervisor(settings)
    if not supervisor.running():
        _say("the stack is not running (start it with `make run`)")
        return 3
    by_name = {s.name: s for s in SERVICES}
    for info in supervisor.rpc().supervisor.getAllProcessInfo():
        name = info["name"]
        health = ""
        if name in by_name and info["statename"] == "RUNNING":
            url = f"http://{settings.service_host}:{by_name[name].port(settings)}/healthz"
            health = "healthy" if http_ok(url) else "not healthy yet"
        _say(f"{name:<11} {info['statename']:<9} {info['description']:<32} {health}")
    return 0
