"""`python -m services.importer FILES... [--province NAME]... [--dry-run] [--run-id UUID]`

Replays PIHPS, Bapanas Panel Harga and WFP/HDX price CSV files (layout detected from the header)
into pangan.price.v1, each price with its original date (10:00 WIB) as occurred_at. Event ids are
deterministic (UUID v5 of source, market, commodity, grade, level and date), so importing a file
twice produces nothing new downstream. correlation_id is the run id, to find one run's events.

Rows that cannot be used are printed as `file:line: reason` on stderr; the summary (read, produced,
rejected, skipped) goes to stdout. Exit status: 0 every row used or skipped on purpose, 2 some rows
rejected (the others were produced), 1 nothing could be done (unreadable file, unknown province,
Kafka down or not acknowledging).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from pantau.contracts import PRICE_TOPIC
from pantau.importers import ImportFileError, province_filter
from pantau.kafka import BrokerUnavailable, DeliveryFailed, EventProducer, wait_for_topics
from pantau.logging import configure_logging
from pantau.reference import load_reference
from pantau.settings import Settings
from services.importer.run import import_files


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.importer",
        description="Replay real price files (PIHPS, Bapanas Panel Harga, WFP/HDX CSV) into pangan.price.v1.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="CSV files, or directories of them")
    parser.add_argument(
        "--province", action="append", default=[], metavar="NAME",
        help='import only this province (repeatable), e.g. --province Lampung --province "DKI Jakarta"',
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="parse and report, produce nothing")
    parser.add_argument("--run-id", help="UUID carried as correlation_id of every event (default: a new one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings()
    log = configure_logging(settings, "importer")
    reference = load_reference()
    try:
        run_id = str(uuid.UUID(args.run_id)) if args.run_id else str(uuid.uuid4())
        provinces = province_filter(args.province, reference)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    producer = None
    try:
        if not args.dry_run:
            wait_for_topics(settings, [PRICE_TOPIC], timeout_s=30)
            producer = EventProducer(settings, client_id="importer")
        summary = import_files(args.files, reference, producer, topic=PRICE_TOPIC, run_id=run_id, provinces=provinces)
        if producer is not None:
            producer.close()
    except ImportFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (BrokerUnavailable, DeliveryFailed, RuntimeError) as exc:
        log.error("import stopped: Kafka did not take the events", error=str(exc))
        print(
            f"error: {exc}\nNothing is lost by running the same import again: event ids are deterministic, "
            "consumers drop what they already have.",
            file=sys.stderr,
        )
        return 1
    for file_summary in summary.files:
        print(file_summary.line(args.dry_run))
    verb = "valid" if args.dry_run else f"produced to {PRICE_TOPIC}"
    print(
        f"total: read {summary.read}, {verb} {summary.produced}, rejected {summary.rejected}, "
        f"skipped {summary.skipped} (run {run_id})"
    )
    return 2 if summary.rejected else 0


if __name__ == "__main__":
    sys.exit(main())
