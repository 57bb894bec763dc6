"""The ref_* tables after `pantau bootstrap` / `pantau migrate`: they hold exactly what
contracts/reference/ holds (read here straight from the JSON files), a second run writes nothing, an
edit to the files is followed (changed values updated, removed codes gone), Grafana's role reads them,
and all of it works on plain PostgreSQL too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from pantau.cli import _migrate
from pantau.dashboards import reader_url
from pantau.db import connect
from pantau.reference import CONTRACTS_DIR, load_reference
from pantau.settings import Settings
from pantau.storage.reference_tables import sync_reference_tables

pytestmark = pytest.mark.db

REF_TABLES = ("ref_files", "ref_commodities", "ref_reference_prices", "ref_markets", "ref_market_requirements",
              "ref_regencies", "ref_checkpoints")  # fmt: skip


def reference_json(contracts: Path, name: str) -> dict:
    return json.loads((contracts / "reference" / f"{name}.v1.json").read_text())


def expected_rows(contracts: Path = CONTRACTS_DIR) -> dict[str, set[tuple]]:
    """What each table must hold, from the raw JSON files (not from the loader's own mapping)."""
    commodities = reference_json(contracts, "commodities")
    markets = reference_json(contracts, "markets")
    regencies = reference_json(contracts, "regencies")
    checkpoints = reference_json(contracts, "checkpoints")
    legs = {leg["from"]: leg for route in checkpoints["routes"] for leg in route["legs"]}
    return {
        "ref_files": {(name, data["version"]) for name, data in
                      [("commodities", commodities), ("markets", markets), ("regencies", regencies),
                       ("checkpoints", checkpoints)]},
        "ref_commodities": {(c["code"], c["name_id"], c["name_en"], c["unit"], tuple(c["quality_grades"]),
                             c["default_grade"]) for c in commodities["commodities"]},
        "ref_reference_prices": {
            (c["code"], p["kind"], p["quality_grade"], p["price_level"], p["zone"],
             tuple(p["province_codes"]) if p["province_codes"] is not None else None, p["effective_from"],
             float(p["price_idr"]), p["legal_basis"], p["note"])
            for c in commodities["commodities"] for p in c["reference_prices"]},
        "ref_markets": {(m["code"], m["name"], m["kind"], m["province_code"], m["city"], m["supply_destination"])
                        for m in markets["markets"]},
        "ref_market_requirements": {
            (m["code"], s["commodity"], s["daily_requirement_kg"],
             s["safe_stock_kg"]["min"] if s["safe_stock_kg"] else None,
             s["safe_stock_kg"]["max"] if s["safe_stock_kg"] else None)
            for m in markets["markets"] for s in m["supply"]},
        "ref_regencies": {(r["code"], r["name"], r["kind"], r["to_bakauheni"]["normal_road_minutes"])
                          for r in regencies["regencies"]},
        "ref_checkpoints": {(c["code"], c["name"], c["sequence"], legs[c["code"]]["normal_minutes"])
                            for c in checkpoints["checkpoints"]},
    }  # fmt: skip


STORED = {
    "ref_files": "SELECT name, version FROM ref_files",
    "ref_commodities": "SELECT code, name_id, name_en, unit, quality_grades, default_grade FROM ref_commodities",
    "ref_reference_prices": "SELECT commodity_code, kind, quality_grade, price_level, zone, province_codes,"
                            " effective_from::text, price_idr, legal_basis, note FROM ref_reference_prices",
    "ref_markets": "SELECT code, name, kind, province_code, city, supply_destination FROM ref_markets",
    "ref_market_requirements": "SELECT market_code, commodity_code, daily_requirement_kg, safe_stock_min_kg,"
                               " safe_stock_max_kg FROM ref_market_requirements",
    "ref_regencies": "SELECT code, name, kind, to_bakauheni_road_minutes FROM ref_regencies",
    "ref_checkpoints": "SELECT code, name, sequence, normal_minutes_to_next FROM ref_checkpoints",
}  # fmt: skip


def stored_rows(conn: psycopg.Connection) -> dict[str, set[tuple]]:
    return {
        table: {tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in conn.execute(query)}
        for table, query in STORED.items()
    }


def row_versions(conn: psycopg.Connection) -> dict[str, set[tuple]]:
    """Each row's physical version (ctid, xmin): any write to a row changes it."""
    return {table: set(conn.execute(f"SELECT ctid::text, xmin::text FROM {table}").fetchall()) for table in REF_TABLES}


def test_bootstrap_fills_the_reference_tables_with_exactly_what_the_reference_files_hold(database: Settings):
    _migrate(database)
    with connect(database) as conn:
        stored = stored_rows(conn)
    expected = expected_rows()
    for table in STORED:
        assert stored[table] == expected[table], f"{table}: missing {expected[table] - stored[table]}, " \
                                                 f"extra {stored[table] - expected[table]}"  # fmt: skip
    assert ("beras", "het", "medium", "retail", "I") in {row[:5] for row in stored["ref_reference_prices"]}
    assert ("pibc", "beras", 2_900_000, 25_000_000, 30_000_000) in stored["ref_market_requirements"]


def test_a_second_bootstrap_writes_nothing(database: Settings):
    _migrate(database)
    with connect(database) as conn:
        before = row_versions(conn)
    _migrate(database)
    with connect(database) as conn:
        assert sync_reference_tables(conn, load_reference()) == dict.fromkeys(REF_TABLES, 0)
        assert row_versions(conn) == before


def copy_contracts(tmp_path: Path) -> Path:
    shutil.copytree(CONTRACTS_DIR / "reference", tmp_path / "reference")
    return tmp_path


def edit(contracts: Path, name: str, change) -> None:
    path = contracts / "reference" / f"{name}.v1.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_codes_removed_from_the_files_disappear_and_changed_values_follow(database: Settings, tmp_path: Path):
    _migrate(database)
    contracts = copy_contracts(tmp_path)

    def without_beef(data: dict) -> None:
        data["commodities"] = [c for c in data["commodities"] if c["code"] != "daging_sapi"]
        [rice] = [c for c in data["commodities"] if c["code"] == "beras"]
        rice["reference_prices"] = [p for p in rice["reference_prices"] if p["quality_grade"] != "premium"]
        data["commodities"][0]["name_id"] = "Beras (semua mutu)"

    def beef_not_in_holidays(data: dict) -> None:
        for holiday in data["holidays"]:
            holiday["commodities"] = [c for c in holiday["commodities"] if c != "daging_sapi"]

    def fewer_markets(data: dict) -> None:
        data["version"] = "1.99"
        data["markets"] = [m for m in data["markets"] if m["code"] != "pasar_minggu"]
        [kramat_jati] = [m for m in data["markets"] if m["code"] == "pikj"]
        kramat_jati["supply"] = [s for s in kramat_jati["supply"] if s["commodity"] != "singkong"]
        kramat_jati["supply"][0]["daily_requirement_kg"] = 320000

    edit(contracts, "commodities", without_beef)
    edit(contracts, "holidays", beef_not_in_holidays)
    edit(contracts, "markets", fewer_markets)
    edit(contracts, "regencies", lambda d: d.update(regencies=[r for r in d["regencies"] if r["code"] != "18.72"]))
    edited = load_reference(contracts)

    with connect(database) as conn:
        before = row_versions(conn)
        changed = sync_reference_tables(conn, edited)
        stored = stored_rows(conn)
        after = row_versions(conn)
    assert stored == expected_rows(contracts)
    assert changed == {"ref_files": 1, "ref_commodities": 2, "ref_reference_prices": 1, "ref_markets": 1,
                       "ref_market_requirements": 2, "ref_regencies": 1, "ref_checkpoints": 0}  # fmt: skip
    assert "daging_sapi" not in {row[0] for row in stored["ref_commodities"]}
    assert "pasar_minggu" not in {row[0] for row in stored["ref_markets"]}
    assert ("pikj", "pisang", 320000, None, None) in stored["ref_market_requirements"]
    assert ("markets", "1.99") in stored["ref_files"]
    assert before["ref_checkpoints"] == after["ref_checkpoints"]  # untouched rows are not rewritten


def test_grafanas_role_reads_the_reference_tables_but_cannot_change_them(database: Settings):
    _migrate(database)
    with psycopg.connect(reader_url(database), autocommit=True) as conn:
        assert conn.execute("SELECT name_id FROM ref_commodities WHERE code = 'beras'").fetchone() == ("Beras",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE ref_reference_prices SET price_idr = 1")


def test_plain_postgresql_gets_the_same_reference_tables(plain_database: Settings):
    _migrate(plain_database)
    with connect(plain_database) as conn:
        assert stored_rows(conn) == expected_rows()
