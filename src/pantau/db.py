"""Database plumbing: connections with a clear error when PostgreSQL is not there, and the
migration runner (`pantau migrate`): versioned SQL files applied once each, in order, safely
re-runnable, under an advisory lock so services starting together do not race."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import structlog
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from pantau.settings import Settings

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x70616E74  # "pant": serialises migrations across processes


class DatabaseUnavailable(RuntimeError):
    pass


def connect(settings: Settings, timeout_s: float = 60.0, **kwargs: object) -> psycopg.Connection:
    """A connection to DATABASE_URL, retrying while the server starts up."""

    @retry(
        retry=retry_if_exception_type(psycopg.OperationalError),
        wait=wait_exponential(multiplier=0.2, max=2),
        stop=stop_after_delay(timeout_s),
        reraise=True,
    )
    def attempt() -> psycopg.Connection:
        return psycopg.connect(settings.database_url, connect_timeout=5, **kwargs)

    try:
        return attempt()
    except psycopg.OperationalError as exc:
        host, port = settings.database_address
        raise DatabaseUnavailable(
            f"PostgreSQL at {host}:{port} (DATABASE_URL) did not accept a connection within {timeout_s:.0f}s: "
            f"{str(exc).strip().splitlines()[-1]}"
        ) from exc


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path} must be named NNNN_lower_snake_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations in {directory} share a version number: {versions}")
    return migrations


def latest_version(directory: Path = MIGRATIONS_DIR) -> int:
    migrations = load_migrations(directory)
    return migrations[-1].version if migrations else 0


def migrate(settings: Settings, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations; returns the versions applied. An applied migration whose file
    changed since is an error (write a new migration instead of editing an old one)."""
    migrations = load_migrations(directory)
    applied_now = []
    with connect(settings, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")}
            for migration in migrations:
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise RuntimeError(
                            f"migration {migration.version:04d}_{migration.name}.sql changed after it was applied; "
                            "add a new migration instead of editing this one"
                        )
                    continue
                started = time.perf_counter()
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                log.info(
                    "migration applied",
                    version=migration.version,
                    name=migration.name,
                    seconds=round(time.perf_counter() - started, 3),
                )
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now


def wait_for_schema(settings: Settings, timeout_s: float = 120.0) -> None:
    """Block until the database holds every migration this code knows (applied by `pantau bootstrap`)."""
    wanted = latest_version()
    deadline = time.monotonic() + timeout_s
    while True:
        with connect(settings, timeout_s=timeout_s) as conn:
            row = conn.execute(
                "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0"
                " ELSE (SELECT coalesce(max(version), 0) FROM schema_migrations) END"
            ).fetchone()
        current = row[0] if row else 0
        if current >= wanted:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"database schema is at version {current}, this code needs {wanted}; run `pantau migrate`"
            )
        log.info("waiting for database schema", current=current, wanted=wanted)
        time.sleep(1.0)


def timescaledb_edition(conn: psycopg.Connection) -> str | None:
    """'apache', 'timescale' (community: retention policies, continuous aggregates), or None."""
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if not row:
        return None
    return conn.execute("SELECT current_setting('timescaledb.license')").fetchone()[0]
