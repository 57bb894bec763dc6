"""Reference data: the files follow their schemas, hold the facts users rely on, and fail clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from pantau.reference import (
    CONTRACTS_DIR,
    REFERENCE_FILES,
    ReferenceDataError,
    UnknownCodeError,
    load_reference,
)

REFERENCE_DIR = CONTRACTS_DIR / "reference"
LAMPUNG_REGENCIES = {
    "18.01": "Lampung Barat",
    "18.02": "Tanggamus",
    "18.03": "Lampung Selatan",
    "18.04": "Lampung Timur",
    "18.05": "Lampung Tengah",
    "18.06": "Lampung Utara",
    "18.07": "Way Kanan",
    "18.08": "Tulang Bawang",
    "18.09": "Pesawaran",
    "18.10": "Pringsewu",
    "18.11": "Mesuji",
    "18.12": "Tulang Bawang Barat",
    "18.13": "Pesisir Barat",
    "18.71": "Bandar Lampung",
    "18.72": "Metro",
}


@pytest.fixture(scope="module")
def ref():
    return load_reference()


@pytest.mark.parametrize("file_name", sorted(REFERENCE_FILES))
def test_reference_file_validates_against_its_schema(file_name):
    schema_path = REFERENCE_DIR / "schemas" / file_name.replace(".json", ".schema.json")
    schema = json.loads(schema_path.read_text())
    Draft202012Validator.check_schema(schema)
    data = json.loads((REFERENCE_DIR / file_name).read_text())
    errors = [
        f"{e.json_path}: {e.message}"
        for e in Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(data)
    ]
    assert errors == []
    assert data["version"].split(".")[0] == file_name.split(".v")[1].split(".")[0]


def test_every_reference_schema_belongs_to_a_reference_file():
    schemas = {p.name.replace(".schema.json", ".json") for p in (REFERENCE_DIR / "schemas").glob("*.json")}
    data_files = {p.name for p in REFERENCE_DIR.glob("*.json")}
    assert schemas == data_files == set(REFERENCE_FILES)


def test_lampung_has_its_15_regencies_with_unique_bps_codes(ref):
    codes = [r.code for r in ref.regencies]
    assert len(codes) == len(set(codes)) == 15
    assert {r.code: r.name for r in ref.regencies} == LAMPUNG_REGENCIES
    assert {r.code for r in ref.regencies if r.kind == "kota"} == {"18.71", "18.72"}


def test_regencies_nearer_the_port_have_shorter_road_times(ref):
    lampung_selatan = ref.regency("18.03").to_bakauheni
    lampung_barat = ref.regency("18.01").to_bakauheni
    assert lampung_selatan.normal_road_minutes < lampung_barat.normal_road_minutes
    assert lampung_selatan.distance_km < lampung_barat.distance_km


@pytest.mark.parametrize("province_code", ["18", "31"])  # Lampung and Jakarta are both in HET zone I
def test_rice_het_in_zone_one_is_13500_medium_and_14900_premium(ref, province_code):
    rice = ref.commodity("beras")
    medium = rice.reference_price("medium", province_code=province_code)
    premium = rice.reference_price("premium", province_code=province_code)
    assert (medium.kind, medium.price_idr, medium.price_level, medium.zone) == ("het", 13500, "retail", "I")
    assert (premium.kind, premium.price_idr, premium.price_level) == ("het", 14900, "retail")
    assert "299" in medium.legal_basis


def test_rice_het_zone_one_does_not_apply_outside_the_zone(ref):
    assert ref.commodity("beras").reference_price("medium", province_code="11") is None  # Aceh: zone II


def test_corn_and_chicken_reference_prices(ref):
    corn = ref.commodity("jagung").reference_price("pipilan_kering", province_code="18")
    chicken = ref.commodity("daging_ayam").reference_price("rata_rata", province_code="31")
    assert (corn.kind, corn.price_idr, corn.price_level) == ("hap", 5800, "wholesale")
    assert (chicken.kind, chicken.price_idr, chicken.price_level) == ("hap", 40000, "retail")


@pytest.mark.parametrize("code", ["pisang", "nanas"])
def test_banana_and_pineapple_have_no_reference_price(ref, code):
    assert ref.commodity(code).reference_prices == ()


def test_cooking_oil_is_priced_per_litre_and_the_rest_per_kg(ref):
    assert {c.code for c in ref.commodities if c.unit == "litre"} == {"minyak_goreng"}


def test_rice_grades_include_the_pihps_all_quality_average(ref):
    rice = ref.commodity("beras")
    assert set(rice.quality_grades) == {"medium", "premium", "rata_rata"}
    assert rice.pihps.commodity_id == 1 and rice.pihps.quality_grade == "rata_rata"


def test_every_pihps_commodity_id_maps_to_one_commodity(ref):
    assert {ref.commodity_for_pihps(i).code for i in range(1, 11)} == {
        "beras", "daging_ayam", "daging_sapi", "telur_ayam", "bawang_merah",
        "bawang_putih", "cabai_merah", "cabai_rawit", "minyak_goreng", "gula_pasir",
    }  # fmt: skip


def test_every_commodity_has_a_wfp_name_and_wfp_names_match_case_insensitively(ref):
    assert all(c.wfp for c in ref.commodities)
    commodity, mapping = ref.commodity_for_wfp("  rice (medium QUALITY) ")
    assert (commodity.code, mapping.quality_grade) == ("beras", "medium")
    assert ref.commodity_for_wfp("Chili (bird's eye)")[0].code == "cabai_rawit"


def test_pihps_provinces_map_to_bps_province_markets(ref):
    assert ref.province_market_for_pihps(10).code == "prov_18"
    assert ref.province_market_for_pihps(13).code == "prov_31"
    markets = {ref.province_market_for_pihps(i).code for i in range(1, 35)}
    assert len(markets) == 34


def test_every_province_has_a_bapanas_name_and_an_average_market(ref):
    provinces = [m for m in ref.markets if m.kind == "province_average"]
    assert len(provinces) == 38
    assert ref.province_market_for_bapanas("D.I Yogyakarta").province_code == "34"
    assert ref.province_market_for_bapanas("Papua Barat Daya").province_code == "92"


def test_cipinang_needs_about_2900_tonnes_of_rice_a_day(ref):
    rice = ref.market("pibc").supply_for("beras")
    assert rice.daily_requirement_kg == 2_900_000
    assert (rice.safe_stock_kg.min, rice.safe_stock_kg.max) == (25_000_000, 30_000_000)
    assert (rice.typical_inflow_kg_per_day.min, rice.typical_inflow_kg_per_day.max) == (2_500_000, 4_000_000)
    assert rice.inflow_peak_weekday == "monday"


def test_supply_destinations_are_in_jakarta(ref):
    destinations = ref.supply_destinations
    assert {"pibc", "pikj"} <= {m.code for m in destinations}
    assert {m.province_code for m in destinations} == {"31"}


def test_wfp_markets_keep_their_ids(ref):
    ids = {m.wfp_market_id: m.code for m in ref.markets if m.wfp_market_id}
    assert set(ids) == {2843, 2844, 2845, 2948, 2949, 2950, 2951}


def test_route_crosses_the_sunda_strait_in_order(ref):
    route = ref.route("lampung_jakarta")
    assert route.checkpoint_codes == ("bakauheni_port", "ferry_crossing", "merak_port")
    assert [ref.checkpoint(c).sequence for c in route.checkpoint_codes] == [1, 2, 3]
    crossing = next(leg for leg in route.legs if leg.from_ == "ferry_crossing")
    assert 120 <= crossing.normal_minutes <= 210


def test_holidays_cover_2022_to_2027(ref):
    for holiday in ref.holidays:
        assert {d.date.year for d in holiday.dates} == set(range(2022, 2028)), holiday.code
    lebaran = {d.date.isoformat() for d in ref.holiday("idul_fitri").dates}
    assert {"2024-04-10", "2025-03-31", "2026-03-21"} <= lebaran


@pytest.mark.parametrize(
    ("lookup", "code"),
    [("commodity", "kopi"), ("market", "pasar_baru"), ("regency", "18.99"), ("checkpoint", "gilimanuk"),
     ("province_market_for_pihps", 99)],
)  # fmt: skip
def test_unknown_code_raises_key_error_naming_it(ref, lookup, code):
    with pytest.raises(KeyError) as raised:
        getattr(ref, lookup)(code)
    assert isinstance(raised.value, UnknownCodeError)
    assert repr(code) in str(raised.value)


def test_load_reference_is_cached():
    assert load_reference() is load_reference()


def _copy_contracts(tmp_path: Path) -> Path:
    shutil.copytree(REFERENCE_DIR, tmp_path / "reference")
    return tmp_path


def _edit(contracts: Path, file_name: str, change) -> None:
    path = contracts / "reference" / file_name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_bad_value_error_names_the_file_and_the_field(tmp_path):
    contracts = _copy_contracts(tmp_path)
    _edit(contracts, "commodities.v1.json",
          lambda d: d["commodities"][0]["reference_prices"][0].update(price_idr="murah"))  # fmt: skip
    with pytest.raises(ReferenceDataError) as raised:
        load_reference(contracts)
    message = str(raised.value)
    assert "commodities.v1.json" in message
    assert "commodities[0] (code beras).reference_prices[0].price_idr" in message


def test_code_unknown_to_another_file_is_named(tmp_path):
    contracts = _copy_contracts(tmp_path)
    _edit(contracts, "regencies.v1.json", lambda d: d["regencies"][2]["main_commodities"].append("kopi"))
    with pytest.raises(ReferenceDataError, match=r"regencies\.v1\.json: regencies\[2\]\.main_commodities: "
                                                 r"unknown commodity 'kopi'"):  # fmt: skip
        load_reference(contracts)


def test_duplicate_code_is_refused(tmp_path):
    contracts = _copy_contracts(tmp_path)
    _edit(contracts, "markets.v1.json", lambda d: d["markets"][1].update(code="pibc"))
    with pytest.raises(
        ReferenceDataError, match=r"markets\.v1\.json: markets\[1\]\.code: duplicate value 'pibc'"
    ):
        load_reference(contracts)


def test_a_wfp_name_under_two_commodities_is_refused(tmp_path):
    contracts = _copy_contracts(tmp_path)
    _edit(contracts, "commodities.v1.json",
          lambda d: d["commodities"][1]["wfp"].append({"commodity": "RICE", "quality_grade": "rata_rata"}))  # fmt: skip
    expected = r"commodities\.v1\.json: commodities\[1\]\.wfp\[1\]\.commodity: WFP name 'RICE' is already mapped"
    with pytest.raises(ReferenceDataError, match=expected + " under commodity 'beras'"):
        load_reference(contracts)


def test_a_wfp_grade_the_commodity_does_not_declare_is_refused(tmp_path):
    contracts = _copy_contracts(tmp_path)
    _edit(contracts, "commodities.v1.json", lambda d: d["commodities"][0]["wfp"][0].update(quality_grade="super"))
    with pytest.raises(ReferenceDataError, match=r"commodities\[0\] \(code beras\).*grades \['super'\] are used"):
        load_reference(contracts)


def test_missing_file_is_named(tmp_path):
    contracts = _copy_contracts(tmp_path)
    (contracts / "reference" / "holidays.v1.json").unlink()
    with pytest.raises(ReferenceDataError, match=r"holidays\.v1\.json: reference file is missing"):
        load_reference(contracts)


def test_province_averages_are_named_in_indonesian_for_the_place_they_stand_for():
    from pantau.reference import PROVINCE_AVERAGE_PREFIX, load_reference

    ref = load_reference()
    averages = [m for m in ref.markets if m.kind == "province_average"]
    assert len(averages) >= 34
    assert all(m.name.startswith(PROVINCE_AVERAGE_PREFIX) for m in averages)
    assert ref.market("prov_18").place_name == "Lampung"
    assert ref.market("pibc").place_name == ref.market("pibc").name
