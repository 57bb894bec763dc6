"""The importer's command line in dry-run mode (no Kafka): reports, summary and exit status."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import structlog

from services.importer.__main__ import main

FIXTURE = Path(__file__).parent / "fixtures" / "wfp_food_prices_idn_sample.csv"


@pytest.fixture(autouse=True)
def restore_logging():
    """main() configures logging onto pytest's captured stderr, which is closed after the test: put the
    defaults back so later tests in this process do not log into a closed file."""
    handlers = logging.getLogger().handlers[:]
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers


def test_dry_run_reports_each_rejected_row_as_file_line_reason_and_sums_up(capsys):
    status = main([str(FIXTURE), "--dry-run", "--province", "Lampung", "--province", "DKI Jakarta"])
    out, err = capsys.readouterr()
    assert status == 2  # some rows rejected, the others are fine
    assert f"{FIXTURE}:15: priceflag 'forecast' is not an observation (actual or aggregate)" in err
    assert f"{FIXTURE}:16: unit 'Unit' is not a per-kg or per-litre unit" in err
    assert "read 15, valid 11, rejected 2, skipped 2 (2 province not selected)" in out
    assert out.splitlines()[-1].startswith("total: read 15, valid 11, rejected 2, skipped 2 (run ")


def test_clean_file_exits_zero_and_unknown_things_exit_one_with_the_reason(tmp_path: Path, capsys):
    clean = tmp_path / "clean.csv"
    clean.write_text("Tanggal,Komoditas,Provinsi,Harga\n19/05/2022,Beras Premium,Lampung,12000.0\n")
    assert main([str(clean), "--dry-run"]) == 0
    assert main([str(tmp_path / "missing.csv"), "--dry-run"]) == 1
    assert "missing.csv: no such file" in capsys.readouterr().err
    assert main([str(clean), "--dry-run", "--province", "Atlantis"]) == 1
    assert "unknown province(s) ['Atlantis']" in capsys.readouterr().err
    assert main([str(clean), "--dry-run", "--run-id", "not-a-uuid"]) == 1
