"""The PIHPS subset is a faithful row subset, and the benchmark runs the real detector."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pantau.detect.evaluate import PIHPS_DIR
from tests.benchmarks.bench_detect import bench_price_detector

HEADER = "Date_Scraped,Date_Param,Commodity_ID,Commodity_Name,Province_ID,Province_Name,Price,Price_Type\n"


def load_extract():
    spec = importlib.util.spec_from_file_location("pihps_extract", PIHPS_DIR / "extract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_keeps_the_lampung_and_jakarta_rows_byte_for_byte(tmp_path: Path):
    rows = [
        "2026-02-12,2022-01-01,1,Beras,1,Aceh,10250.0,1\n",
        "2026-02-12,2022-01-01,1,Beras,10,Lampung,11200.0,1\n",
        "2026-02-12,2022-01-01,1,Beras,13,DKI Jakarta,13550.0,1\n",
        "2026-02-12,2022-01-01,1,Beras,31,Maluku,12100.0,1\n",  # 31 is a PIHPS id, not BPS Jakarta
    ]
    source = tmp_path / "komoditas_beras_2022_2026.csv"
    source.write_bytes((HEADER + "".join(rows)).encode())
    target = tmp_path / "out.csv"
    assert load_extract().extract(source, target) == 2
    assert target.read_bytes() == (HEADER + rows[1] + rows[2]).encode()


def test_repo_subset_has_ten_commodities_of_lampung_and_jakarta_only():
    files = sorted(PIHPS_DIR.glob("komoditas_*_2022_2026.csv"))
    assert len(files) == 10
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        assert lines[0] == HEADER
        provinces = {line.split(",")[4] for line in lines[1:]}
        assert provinces == {"10", "13"}, path.name
        assert len(lines) > 2_700


def test_price_benchmark_runs_every_event_through_the_detector():
    figures = bench_price_detector(3_000, repeats=1)
    assert figures["events"] == 3_000 and figures["conditions"] == 3_000 and figures["rejected"] == 0
    assert figures["step_events_per_s"] > 0 and figures["step_with_json_state_events_per_s"] > 0
