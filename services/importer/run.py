"""One import run: every file's rows parsed, the observations produced, rejections reported as
`file:line: reason`, and a summary of what was read, produced, rejected and skipped."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from pantau.contracts import encode_event, kafka_key
from pantau.importers import ImportFileError, Observation, Rejection, Skipped, open_file, read_rows
from pantau.kafka import EventProducer
from pantau.reference import ReferenceData


@dataclass
class FileSummary:
    path: Path
    layout: str
    read: int = 0
    produced: int = 0
    rejected: int = 0
    skipped: Counter = field(default_factory=Counter)

    def line(self, dry_run: bool) -> str:
        verb = "valid" if dry_run else "produced"
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return (
            f"{self.path} [{self.layout}]: read {self.read}, {verb} {self.produced}, rejected {self.rejected}, "
            f"skipped {sum(self.skipped.values())}" + (f" ({skipped})" if skipped else "")
        )


@dataclass
class ImportSummary:
    run_id: str
    files: list[FileSummary] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def produced(self) -> int:
        return sum(f.produced for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def skipped(self) -> int:
        return sum(sum(f.skipped.values()) for f in self.files)


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a directory stands for the CSV files in it."""
    result: list[Path] = []
    for path in paths:
        result.extend(sorted(path.glob("*.csv")) if path.is_dir() else [path])
    return result


def import_files(
    paths: Sequence[Path],
    reference: ReferenceData,
    producer: EventProducer | None,
    *,
    topic: str,
    run_id: str,
    provinces: frozenset[str] | None = None,
    errors: TextIO | None = None,
    progress: bool | None = None,
) -> ImportSummary:
    """Parse every file first-to-last and produce its observations (producer None: dry run).

    Raises ImportFileError for a file that cannot be read at all, before anything is produced from
    it; DeliveryFailed when Kafka does not acknowledge."""
    errors = errors if errors is not None else sys.stderr
    readers = [open_file(path) for path in expand(paths)]  # every header checked before producing
    if not readers:
        raise ImportFileError(f"no CSV files in {', '.join(map(str, paths))}")
    summary = ImportSummary(run_id)
    for reader in readers:
        file_summary = FileSummary(reader.path, reader.layout.name)
        summary.files.append(file_summary)
        bar = tqdm(
            total=reader.data_lines, desc=reader.path.name, unit="row", file=sys.stderr,
            disable=(not progress) if progress is not None else None, leave=False,
        )  # fmt: skip
        with bar:
            for result in read_rows(reader, reference, provinces):
                bar.update(1)
                file_summary.read += 1
                if isinstance(result, Observation):
                    if producer is not None:
                        event = result.to_event(run_id)
                        producer.send(topic, kafka_key(event), encode_event(event), event.event_type)
                    file_summary.produced += 1
                elif isinstance(result, Rejection):
                    file_summary.rejected += 1
                    tqdm.write(result.describe(reader.path), file=errors)
                elif isinstance(result, Skipped):
                    file_summary.skipped[result.reason] += 1
        if producer is not None:
            producer.flush()  # a file counts as produced once Kafka acknowledged all of it
    return summary
