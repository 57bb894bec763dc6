"""`pantau`: the operator's command for what is not a service.

  pantau bootstrap          create the topics, migrate the database, load the reference tables (idempotent)
  pantau migrate            apply pending database migrations and reload the reference tables
  pantau topics             create missing topics from contracts/asyncapi.yaml
  pantau stack run|stop|status   the embedded local stack (make run / make stop / make status)
  pantau tail TOPIC         print a topic's events as they arrive (e.g. pangan.alert.v1)
  pantau health SERVICE     exit 0 when the service's /healthz answers 200 (container healthchecks)
"""

from __future__ import annotations

import argparse
import sys

from pantau.logging import configure_logging
from pantau.settings import Settings, settings_table


def _topics(settings: Settings) -> None:
    from pantau.contracts.topics import topic_specs
    from pantau.kafka import ensure_topics

    ensure_topics(settings, topic_specs())


def _migrate(settings: Settings) -> None:
    import structlog
    from psycopg import sql

    from pantau.db import connect, migrate
    from pantau.reference import load_reference
    from pantau.storage.reference_tables import sync_reference_tables

    migrate(settings)
    with connect(settings, autocommit=True) as conn:
        # The read-only role (Grafana, query API reads) is created by a migration without a password;
        # its password comes from the environment only.
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'pantau_reader'").fetchone():
            conn.execute(
                sql.SQL("ALTER ROLE pantau_reader LOGIN PASSWORD {}").format(
                    sql.Literal(settings.database_reader_password)
                )
            )
        # The ref_* tables follow contracts/reference/ (dashboards join them for names and HET/HAP prices).
        changed = sync_reference_tables(conn, load_reference())
    structlog.get_logger(__name__).info("reference tables synced", **{k: v for k, v in changed.items() if v})


def _tail(settings: Settings, topic: str, from_beginning: bool) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        group_id=None,
    )
    print(f"waiting for events on {topic} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        for message in consumer:
            print(message.value.decode(errors="replace"), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def _health(settings: Settings, service_name: str) -> int:
    from pantau.devstack import SERVICES, http_ok

    by_name = {s.name: s for s in SERVICES}
    if service_name not in by_name:
        print(f"unknown service {service_name!r}; one of {sorted(by_name)}", file=sys.stderr)
        return 2
    port = by_name[service_name].port(settings)
    return 0 if http_ok(f"http://127.0.0.1:{port}/healthz", timeout=3) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pantau", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bootstrap", help="create topics and migrate the database")
    sub.add_parser("migrate", help="apply pending database migrations")
    sub.add_parser("topics", help="create missing topics from contracts/asyncapi.yaml")
    stack = sub.add_parser("stack", help="the embedded local stack")
    stack.add_argument("action", choices=["run", "stop", "status"])
    tail = sub.add_parser("tail", help="print a topic's events as they arrive")
    tail.add_argument("topic")
    tail.add_argument("--from-beginning", action="store_true")
    health = sub.add_parser("health", help="exit 0 when a service's /healthz answers 200")
    health.add_argument("service")
    sub.add_parser("settings", help="every setting (environment variable), its default and meaning, as Markdown")
    args = parser.parse_args(argv)
    if args.command == "settings":
        print(settings_table())
        return 0

    settings = Settings()
    if args.command == "health":
        return _health(settings, args.service)
    configure_logging(settings, service=f"pantau {args.command}")
    if args.command == "bootstrap":
        _topics(settings)
        _migrate(settings)
    elif args.command == "migrate":
        _migrate(settings)
    elif args.command == "topics":
        _topics(settings)
    elif args.command == "tail":
        _tail(settings, args.topic, args.from_beginning)
    elif args.command == "stack":
        from pantau import devstack

        try:
            return {"run": devstack.run, "stop": devstack.stop, "status": devstack.status}[args.action](settings)
        except devstack.StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
