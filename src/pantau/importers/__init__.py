"""Importers of real price files (PIHPS, Bapanas Panel Harga, WFP/HDX) into PriceObserved events.

    reader = open_file(path)                          # layout detected from the header
    for result in read_rows(reader, load_reference(), province_filter(["Lampung"], ref)):
        ...  # Observation (.to_event(run_id)), Rejection (.describe(path)) or Skipped

Pure: no Kafka; services/importer produces the events.
"""

from pantau.importers.layouts import LAYOUTS, Layout, UnknownLayout, detect_layout
from pantau.importers.reader import (
    ImportFileError,
    load_wfp_markets,
    open_file,
    parse_lines,
    province_filter,
    read_rows,
)
from pantau.importers.records import OBSERVED_AT, Observation, Rejection, Skipped, observed_at

__all__ = [
    "LAYOUTS",
    "OBSERVED_AT",
    "ImportFileError",
    "Layout",
    "Observation",
    "Rejection",
    "Skipped",
    "UnknownLayout",
    "detect_layout",
    "load_wfp_markets",
    "observed_at",
    "open_file",
    "parse_lines",
    "province_filter",
    "read_rows",
]
