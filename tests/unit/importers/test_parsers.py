"""Parsers of the real price layouts: every valid row becomes an observation with the right codes,
every bad row a rejection naming its line and the reason; garbage never crashes them."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pantau.contracts import WIB, event_to_dict, schema_validator
from pantau.importers import (
    LAYOUTS,
    ImportFileError,
    Observation,
    Rejection,
    Skipped,
    UnknownLayout,
    detect_layout,
    load_wfp_markets,
    open_file,
    parse_lines,
    province_filter,
    read_rows,
)
from pantau.reference import load_reference
from pantau.settings import REPO_ROOT

FIXTURES = Path(__file__).parent / "fixtures"
WFP_SAMPLE = FIXTURES / "wfp_food_prices_idn_sample.csv"
PIHPS_DIR = REPO_ROOT / "data" / "pihps"
BAPANAS_FILE = REPO_ROOT / "data" / "bapanas" / "harga_beras_premium.csv"
LAYOUT = {layout.name: layout for layout in LAYOUTS}
REF = load_reference()


def results(path: Path, provinces=None) -> list:
    return list(read_rows(open_file(path), REF, province_filter(provinces or [], REF)))


def test_layout_is_detected_from_the_header():
    assert open_file(PIHPS_DIR / "komoditas_beras_2022_2026.csv").layout.name == "pihps"
    assert open_file(BAPANAS_FILE).layout.name == "bapanas"
    assert open_file(WFP_SAMPLE).layout.name == "wfp"
    with pytest.raises(UnknownLayout, match=r"matches no known layout \(pihps: Date_Scraped.*bapanas: Tanggal.*wfp"):
        detect_layout(["tanggal", "harga"])


def test_unknown_header_and_missing_file_name_the_file(tmp_path: Path):
    odd = tmp_path / "odd.csv"
    odd.write_text("when,what\n2024-01-01,1\n")
    with pytest.raises(ImportFileError, match=f"{odd}:1: header"):
        open_file(odd)
    with pytest.raises(ImportFileError, match="no such file"):
        open_file(tmp_path / "missing.csv")


def test_every_pihps_row_of_lampung_and_jakarta_becomes_a_valid_event():
    observations = []
    for path in sorted(PIHPS_DIR.glob("komoditas_*_2022_2026.csv")):
        found = results(path)
        assert all(isinstance(r, Observation) for r in found), [r for r in found if not isinstance(r, Observation)][:3]
        observations += found
    assert len(observations) == 10 * 2783
    assert len({o.event_id for o in observations}) == len(observations)
    first = observations[0]  # komoditas_bawang_merah..., line 2
    assert first.line == 2 and first.source == "importer.pihps"
    rice = results(PIHPS_DIR / "komoditas_beras_2022_2026.csv")[0]  # 2022-01-01,1,Beras,10,Lampung,11200.0,1
    assert (rice.commodity, rice.market_code, rice.province_code, rice.quality_grade, rice.price_level, rice.unit) == (
        "beras", "prov_18", "18", "rata_rata", "retail", "kg",
    )  # fmt: skip
    assert rice.price_idr == 11200.0 and rice.observed_on == date(2022, 1, 1)
    event = rice.to_event("0d6c2a9e-1b7f-4e3a-8c5d-2f4a6b8c0e13")
    assert event.occurred_at == datetime(2022, 1, 1, 10, tzinfo=WIB)
    assert event.correlation_id == "0d6c2a9e-1b7f-4e3a-8c5d-2f4a6b8c0e13"
    oil = next(o for o in observations if o.commodity == "minyak_goreng")
    validator = schema_validator()
    for observation in (rice, oil):
        data = event_to_dict(observation.to_event())
        assert validator.errors(data) == []
    assert event_to_dict(oil.to_event())["payload"]["price_idr_per_litre"] == oil.price_idr


def test_bapanas_rows_map_to_premium_rice_and_empty_prices_are_skipped_not_lost():
    found = results(BAPANAS_FILE)
    observations = [r for r in found if isinstance(r, Observation)]
    skipped = [r for r in found if isinstance(r, Skipped)]
    assert len(found) == 13794 and not [r for r in found if isinstance(r, Rejection)]
    assert len(skipped) == 2625 and {s.reason for s in skipped} == {"no price reported (Harga empty)"}
    first = observations[0]  # 19/05/2022,Beras Premium,Nusa Tenggara Barat,10600.0
    assert (first.commodity, first.quality_grade, first.price_level, first.market_code, first.price_idr) == (
        "beras", "premium", "retail", "prov_52", 10600.0,
    )  # fmt: skip
    assert first.observed_on == date(2022, 5, 19)
    selected = results(BAPANAS_FILE, ["Lampung", "DKI Jakarta"])
    assert {o.market_code for o in selected if isinstance(o, Observation)} == {"prov_18", "prov_31"}


def test_wfp_rows_map_markets_by_id_and_reject_what_the_contract_cannot_hold():
    found = results(WFP_SAMPLE)
    observations = [r for r in found if isinstance(r, Observation)]
    rejections = {r.line: r.reason for r in found if isinstance(r, Rejection)}
    assert len(observations) == 11
    assert {o.market_code for o in observations} == {
        "pasar_smep", "pasar_tugu", "pasar_kopindo", "pasar_tejo_agung", "pasar_minggu", "pasar_jatinegara",
        "pasar_kramatjati",
    }  # fmt: skip
    oil = next(o for o in observations if o.commodity == "minyak_goreng")
    assert oil.unit == "litre" and oil.price_idr == 17000.0
    assert rejections == {
        13: "WFP market_id 2821 (Pasar Lapang, ACEH) is not in contracts/reference/markets.v1.json",
        14: "WFP market_id 974 (National Average, ) is not in contracts/reference/markets.v1.json",
        15: "priceflag 'forecast' is not an observation (actual or aggregate)",
        16: "unit 'Unit' is not a per-kg or per-litre unit",
    }
    selected = results(WFP_SAMPLE, ["Lampung", "DKI Jakarta"])
    assert sum(isinstance(r, Skipped) for r in selected) == 2  # Aceh and the national average
    assert len(load_wfp_markets()) == 224


def test_bad_rows_are_rejected_with_their_line_and_reason_and_the_rest_parsed(tmp_path: Path):
    path = tmp_path / "pihps_bad.csv"
    lines = [
        ",".join(LAYOUT["pihps"].columns),
        "2026-02-12,2024-01-02,1,Beras,10,Lampung,14500.0,1",
        "2026-02-12,2024-13-02,1,Beras,10,Lampung,14500.0,1",  # line 3: month 13
        "2026-02-12,2024-01-03,1,Beras,10,Lampung,-5,1",  # line 4
        "2026-02-12,2024-01-03,1,Beras,99,Atlantis,14500.0,1",  # line 5
        "2026-02-12,2024-01-03,1,Beras,10",  # line 6: short
        "2026-02-12,2024-01-03,42,Kopi,10,Lampung,14500.0,1",  # line 7
        "2026-02-12,2024-01-03,1,Beras,13,DKI Jakarta,abc,1",  # line 8
        "2026-02-12,2024-01-03,1,Beras,13,DKI Jakarta,16000,2",  # line 9: modern market
        "2026-02-12,2024-01-04,1,Beras,13,DKI Jakarta,16050.0,1",
    ]
    path.write_text("\n".join(lines) + "\n")
    found = results(path)
    assert [r.line for r in found if isinstance(r, Observation)] == [2, 10]
    rejected = {r.line: r.describe(path) for r in found if isinstance(r, Rejection)}
    assert rejected == {
        3: f"{path}:3: Date_Param '2024-13-02' is not a date YYYY-MM-DD",
        4: f"{path}:4: Price '-5' is not a positive price",
        5: f"{path}:5: unknown PIHPS Province_ID 99",
        6: f"{path}:6: expected 8 columns (" + ", ".join(LAYOUT["pihps"].columns) + "), got 5",
        7: f"{path}:7: unknown PIHPS Commodity_ID 42",
        8: f"{path}:8: Price 'abc' is not a number",
        9: f"{path}:9: Price_Type '2' is not one of 1, 3, 4 (1 traditional market)",
    }


def test_a_quoted_field_spanning_lines_keeps_the_line_numbers_right():
    text = (
        '19/05/2022,Beras Premium,Lampung,12000\n20/05/2022,"Beras\nPremium",Lampung,12100\n'
        "21/05/2022,Beras Premium,Lampung,x\n"
    )
    found = list(parse_lines(io.StringIO(text), list(LAYOUT["bapanas"].columns), LAYOUT["bapanas"], REF))
    assert [(type(r).__name__, r.line) for r in found] == [("Observation", 2), ("Rejection", 3), ("Rejection", 5)]


def test_the_same_observation_always_gets_the_same_event_id():
    first = results(BAPANAS_FILE, ["Lampung"])
    again = results(BAPANAS_FILE, ["Lampung"])
    ids = [r.event_id for r in first if isinstance(r, Observation)]
    assert ids == [r.event_id for r in again if isinstance(r, Observation)]
    assert len(set(ids)) == len(ids)


def wfp_row(commodity: str) -> str:
    return csv_text([["2024-01-15", "LAMPUNG", "Bandar Lampung", "Pasar Smep", "2948", "0", "0", "c", commodity, "KG",
                      "actual", "Retail", "IDR", "15000", "1"]])  # fmt: skip


@pytest.mark.parametrize(("name", "commodity", "grade"), [
    ("Rice (medium quality)", "beras", "medium"),
    ("rice (PREMIUM)", "beras", "premium"),
    ("Meat (beef, first quality)", "daging_sapi", "kualitas_1"),
    ("Sugar (local)", "gula_pasir", "lokal"),
    ("Onions (red)", "bawang_merah", "rata_rata"),
    ("Maize", "jagung", "pipilan_kering"),
])  # fmt: skip
def test_wfp_commodity_names_map_to_the_commodity_and_grade_commodities_v1_names(name, commodity, grade):
    text = wfp_row(name)
    [found] = list(parse_lines(io.StringIO(text), list(LAYOUT["wfp"].columns), LAYOUT["wfp"], REF))
    assert (found.commodity, found.quality_grade, found.market_code) == (commodity, grade, "pasar_smep")


def test_a_wfp_commodity_the_reference_does_not_map_is_rejected_naming_where_to_map_it():
    text = wfp_row("Coffee (robusta)")
    [found] = list(parse_lines(io.StringIO(text), list(LAYOUT["wfp"].columns), LAYOUT["wfp"], REF))
    assert found == Rejection(
        2, "WFP commodity 'Coffee (robusta)' is not mapped to a commodity (wfp in commodities.v1.json)"
    )


def test_the_pihps_replay_of_the_detectors_dates_a_row_as_the_importer_does():
    from pantau.detect.evaluate import Series, read_pihps

    [first_imported, *_] = [r for r in results(PIHPS_DIR / "komoditas_beras_2022_2026.csv", ["Lampung"])
                            if isinstance(r, Observation) and r.price_level == "retail"]  # fmt: skip
    [first_replayed, *_] = read_pihps(Series("beras", 10, "prov_18", "18"))
    assert first_replayed.occurred_at == first_imported.occurred_at
    assert first_imported.occurred_at.isoformat() == f"{first_imported.observed_on}T10:00:00+07:00"


def test_unknown_province_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown province\(s\) \['Atlantis'\]; known: Aceh, Bali"):
        province_filter(["Atlantis"], REF)
    assert province_filter(["dki jakarta", "LAMPUNG"], REF) == province_filter(["DKI Jakarta", "Lampung"], REF)


# --- properties ------------------------------------------------------------------------------------

PIHPS_COMMODITIES = [c for c in REF.commodities if c.pihps]
PIHPS_PROVINCES = [m for m in REF.markets if m.pihps_province_id is not None]
BAPANAS_PROVINCES = [m for m in REF.markets if m.bapanas_province_name]
WFP_MARKETS = [m for m in REF.markets if m.wfp_market_id is not None]
prices = st.floats(min_value=1, max_value=10_000_000, allow_nan=False).map(lambda p: round(p, 2))
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


@st.composite
def pihps_rows(draw):
    commodity, market = draw(st.sampled_from(PIHPS_COMMODITIES)), draw(st.sampled_from(PIHPS_PROVINCES))
    price, day = draw(prices), draw(days)
    row = ["2026-02-12", day.isoformat(), str(commodity.pihps.commodity_id), commodity.pihps.commodity_name,
           str(market.pihps_province_id), market.name, repr(price), "1"]  # fmt: skip
    return row, (commodity.code, market.code, price, day)


@st.composite
def bapanas_rows(draw):
    commodity = next(c for c in REF.commodities if c.bapanas)
    market, price, day = draw(st.sampled_from(BAPANAS_PROVINCES)), draw(prices), draw(days)
    row = [day.strftime("%d/%m/%Y"), commodity.bapanas[0].name, market.bapanas_province_name, str(price)]
    return row, (commodity.code, market.code, price, day)


@st.composite
def wfp_rows(draw):
    market, price, day = draw(st.sampled_from(WFP_MARKETS)), draw(prices), draw(days)
    name = draw(st.sampled_from(["Rice (medium quality)", "Chili (red)", "Eggs", "Sugar", "Garlic"]))
    row = [day.isoformat(), "X", "Y", market.name, str(market.wfp_market_id), "0", "0", "c", name, "KG", "actual",
           "Retail", "IDR", str(price), "1"]  # fmt: skip
    return row, (REF.commodity_for_wfp(name)[0].code, market.code, price, day)


@pytest.mark.parametrize(("layout", "strategy"), [("pihps", pihps_rows), ("bapanas", bapanas_rows), ("wfp", wfp_rows)])
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_no_valid_row_is_lost(layout, strategy, data):
    drawn = data.draw(st.lists(strategy(), min_size=1, max_size=30))
    text = csv_text([row for row, _ in drawn])
    found = list(parse_lines(io.StringIO(text), list(LAYOUT[layout].columns), LAYOUT[layout], REF))
    assert all(isinstance(r, Observation) for r in found), [r for r in found if not isinstance(r, Observation)]
    assert [(o.commodity, o.market_code, o.price_idr, o.observed_on) for o in found] == [e for _, e in drawn]
    assert [o.line for o in found] == list(range(2, 2 + len(drawn)))


garbage_cell = st.one_of(
    st.text(max_size=20), st.sampled_from(["", "nan", "inf", "-1", "1e400", "0", "10.5", "01/02/2024", "2024-02-30"])
)


@pytest.mark.parametrize("layout", ["pihps", "bapanas", "wfp"])
@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(garbage_cell, min_size=0, max_size=17), max_size=20), raw=st.text(max_size=300))
def test_garbage_rows_never_crash_the_parser(layout, rows, raw):
    columns = list(LAYOUT[layout].columns)
    for text in (csv_text(rows), raw):
        found = list(parse_lines(io.StringIO(text), columns, LAYOUT[layout], REF, markets=load_wfp_markets()))
        assert all(isinstance(r, Observation | Rejection | Skipped) for r in found)
        for result in found:
            if isinstance(result, Rejection):
                assert result.reason and result.line >= 2
            if isinstance(result, Observation):
                assert result.price_idr > 0
