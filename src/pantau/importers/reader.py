"""Reading a price file: detect its layout from the header, then one result per data row with its
line number. Nothing is dropped silently: every row is an Observation, a Rejection (reason) or a
Skipped (no price that day, province not selected)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pantau.importers.layouts import Layout, RowResult, UnknownLayout, WfpMarket, detect_layout
from pantau.importers.records import Rejection, Skipped
from pantau.reference import ReferenceData
from pantau.settings import REPO_ROOT

WFP_MARKETS_FILE = REPO_ROOT / "data" / "wfp" / "wfp_markets_idn.csv"


class ImportFileError(ValueError):
    """A file that cannot be read at all (missing, empty, unknown layout); names the file."""


def province_key(name: str) -> str:
    """'DKI JAKARTA', 'DKI Jakarta' and 'D.I Yogyakarta' / 'DI Yogyakarta' compare equal."""
    return re.sub(r"\s+", " ", name.replace(".", " ")).strip().casefold().replace("d i ", "di ")


def known_provinces(ref: ReferenceData) -> dict[str, str]:
    """province_key -> display name, from the province-average markets of markets.v1.json."""
    names: dict[str, str] = {}
    for market in ref.markets:
        if market.kind == "province_average":
            display = market.place_name
            for name in (display, market.bapanas_province_name):
                if name:
                    names[province_key(name)] = display
    return names


def province_filter(names: Iterable[str], ref: ReferenceData) -> frozenset[str] | None:
    """The --province values as keys; a name the reference data does not know is an error."""
    names = list(names)
    if not names:
        return None
    known = known_provinces(ref)
    unknown = [n for n in names if province_key(n) not in known]
    if unknown:
        raise ValueError(f"unknown province(s) {unknown}; known: {', '.join(sorted(set(known.values())))}")
    return frozenset(province_key(n) for n in names)


def load_wfp_markets(path: Path = WFP_MARKETS_FILE) -> dict[int, WfpMarket]:
    """The WFP market list (market_id, market, countryiso3, admin1, admin2, latitude, longitude)."""
    markets = {}
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            markets[int(row["market_id"])] = WfpMarket(int(row["market_id"]), row["market"], row["admin1"])
    return markets


@dataclass
class FileReader:
    path: Path
    layout: Layout
    header: list[str]
    data_lines: int  # physical lines after the header (for the progress bar)


def open_file(path: Path) -> FileReader:
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            first = handle.readline()
            lines = sum(1 for _ in handle)
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path}: is a directory, give the CSV files in it") from None
    if not first.strip():
        raise ImportFileError(f"{path}: empty file, expected a CSV header")
    header = next(csv.reader([first]))
    try:
        layout = detect_layout(header)
    except UnknownLayout as exc:
        raise ImportFileError(f"{path}:1: {exc}") from None
    return FileReader(path, layout, header, lines)


def read_rows(
    reader: FileReader,
    ref: ReferenceData,
    provinces: frozenset[str] | None = None,
    wfp_markets: Mapping[int, WfpMarket] | None = None,
) -> Iterator[RowResult]:
    """One result per data row, in file order, each with its line number (the header is line 1)."""
    markets = wfp_markets if wfp_markets is not None else (load_wfp_markets() if reader.layout.name == "wfp" else {})
    columns = [c.strip().lstrip("\ufeff") for c in reader.header]
    with reader.path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        handle.readline()
        yield from parse_lines(handle, columns, reader.layout, ref, provinces, markets, first_line=2)


def parse_lines(
    lines: Iterable[str],
    columns: list[str],
    layout: Layout,
    ref: ReferenceData,
    provinces: frozenset[str] | None = None,
    markets: Mapping[int, WfpMarket] | None = None,
    first_line: int = 2,
) -> Iterator[RowResult]:
    """Parse CSV data lines (no header) of a known layout; pure, for tests and the reader."""
    markets = markets or {}
    rows = csv.reader(lines)
    line = first_line
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Rejection(line, f"not a CSV row: {exc}")
            line = first_line + rows.line_num
            continue
        start, line = line, first_line + rows.line_num
        if not values or all(not v.strip() for v in values):
            yield Skipped(start, "blank line")
            continue
        if len(values) != len(columns):
            yield Rejection(start, f"expected {len(columns)} columns ({', '.join(columns)}), got {len(values)}")
            continue
        row = dict(zip(columns, values, strict=True))
        if provinces is not None and province_key(row.get(layout.province_column, "")) not in provinces:
            yield Skipped(start, "province not selected")
            continue
        yield layout.parse(start, row, ref, markets)
