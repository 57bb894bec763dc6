"""The importer against the real broker: the PIHPS Lampung and DKI Jakarta files replay completely
(one event per valid row, found again by source and run id), bad rows are reported and the rest
produced, and every message is a valid PriceObserved with its original date."""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from pantau.contracts import PRICE_TOPIC, WIB, decode_event, kafka_key, schema_validator
from pantau.importers import Observation, open_file, province_filter, read_rows
from pantau.kafka import EventProducer
from pantau.reference import load_reference
from pantau.settings import REPO_ROOT
from services.importer.run import import_files
from tests.integration.producers.kafka_helpers import consume_all, fresh_topics

pytestmark = pytest.mark.kafka
# The repository's row subset (data/pihps/extract.py); the anchors hold the full 34-province files.
PIHPS_DIR = REPO_ROOT / "data" / "pihps"
ANCHOR_PIHPS_DIR = Path("/work/shared/anchors/data/pihps_bi_34prov_2022_2026")
PROVINCES = ("Lampung", "DKI Jakarta")
WFP_SAMPLE = REPO_ROOT / "tests" / "unit" / "importers" / "fixtures" / "wfp_food_prices_idn_sample.csv"


def pihps_files() -> list[Path]:
    directory = PIHPS_DIR if any(PIHPS_DIR.glob("komoditas_*.csv")) else ANCHOR_PIHPS_DIR
    files = sorted(directory.glob("komoditas_*_2022_2026.csv"))
    assert len(files) == 10, f"expected the 10 PIHPS files in {directory}"
    return files


def test_pihps_lampung_and_jakarta_replay_completely_one_event_per_valid_row(kafka_settings, fresh_topic_name):
    ref = load_reference()
    provinces = province_filter(PROVINCES, ref)
    files = pihps_files()
    valid = sum(isinstance(r, Observation) for path in files for r in read_rows(open_file(path), ref, provinces))
    topic = fresh_topics(kafka_settings, fresh_topic_name, PRICE_TOPIC)[PRICE_TOPIC]
    run_id = str(uuid.uuid4())
    with EventProducer(kafka_settings, client_id="test-importer") as producer:
        summary = import_files(files, ref, producer, topic=topic, run_id=run_id, provinces=provinces, progress=False)
        assert producer.acknowledged == valid
    assert summary.produced == valid and summary.rejected == 0 and valid == 10 * 2783

    records = consume_all(kafka_settings, [topic], expected=valid)
    events = [decode_event(r.value) for r in records]
    of_run = [e for e in events if e.source == "importer.pihps" and e.correlation_id == run_id]
    assert len(of_run) == valid
    assert len({e.event_id for e in of_run}) == valid
    assert {e.payload.market_code for e in of_run} == {"prov_18", "prov_31"}
    assert Counter(e.payload.commodity for e in of_run) == {
        c.code: 2783 for c in ref.commodities if c.pihps
    }  # fmt: skip
    assert all(r.key.decode() == kafka_key(e) for r, e in zip(records, events, strict=True))
    first_rice = min((e for e in of_run if e.payload.commodity == "beras"), key=lambda e: e.occurred_at)
    assert first_rice.occurred_at == datetime(2022, 1, 1, 10, tzinfo=WIB)
    validator = schema_validator()
    for record in records[::25]:
        assert validator.errors(json.loads(record.value)) == []


def test_bad_rows_are_reported_with_file_and_line_and_the_rest_is_produced(
    kafka_settings, fresh_topic_name, tmp_path: Path
):
    path = tmp_path / "bapanas_with_errors.csv"
    path.write_text(
        "Tanggal,Komoditas,Provinsi,Harga\n"
        "19/05/2022,Beras Premium,Lampung,12350.0\n"
        "32/05/2022,Beras Premium,Lampung,12350.0\n"  # line 3
        "20/05/2022,Beras Premium,Atlantis,12350.0\n"  # line 4
        "20/05/2022,Beras Premium,DKI Jakarta,\n"  # line 5: no report that day
        "20/05/2022,Beras Premium,DKI Jakarta,-1\n"  # line 6
        "21/05/2022,Beras Premium,DKI Jakarta,13900.0\n"
    )
    topic = fresh_topics(kafka_settings, fresh_topic_name, PRICE_TOPIC)[PRICE_TOPIC]
    errors, run_id = io.StringIO(), str(uuid.uuid4())
    with EventProducer(kafka_settings, client_id="test-importer") as producer:
        summary = import_files([path], load_reference(), producer, topic=topic, run_id=run_id, errors=errors)
    assert errors.getvalue().splitlines() == [
        f"{path}:3: Tanggal '32/05/2022' is not a date DD/MM/YYYY",
        f"{path}:4: unknown Bapanas province name 'Atlantis'",
        f"{path}:6: Harga '-1' is not a positive price",
    ]
    assert (summary.read, summary.produced, summary.rejected, summary.skipped) == (6, 2, 3, 1)
    events = [decode_event(r.value) for r in consume_all(kafka_settings, [topic], expected=2)]
    assert sorted((e.payload.market_code, e.payload.price_idr) for e in events) == [
        ("prov_18", 12350.0), ("prov_31", 13900.0),
    ]  # fmt: skip
    assert {e.source for e in events} == {"importer.bapanas"}


def test_reimporting_gives_the_same_event_ids_and_wfp_rows_keep_their_market(kafka_settings, fresh_topic_name):
    ref = load_reference()
    topic = fresh_topics(kafka_settings, fresh_topic_name, PRICE_TOPIC)[PRICE_TOPIC]
    with EventProducer(kafka_settings, client_id="test-importer") as producer:
        for _ in range(2):
            import_files([WFP_SAMPLE], ref, producer, topic=topic, run_id=str(uuid.uuid4()), errors=io.StringIO())
    events = [decode_event(r.value) for r in consume_all(kafka_settings, [topic], expected=22)]
    assert len(events) == 22 and len({e.event_id for e in events}) == 11  # consumers keep one of each
    assert {e.payload.market_code for e in events} >= {"pasar_smep", "pasar_minggu", "pasar_kramatjati"}
    assert all(e.source == "importer.wfp" for e in events)
