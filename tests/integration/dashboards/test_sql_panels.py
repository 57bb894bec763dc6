"""Every SQL panel, variable and annotation of the dashboards, run as Grafana runs them: macros and
variables expanded (each variable at its first value, and at "All"), against TimescaleDB holding a
month of realistic events, as the read-only role pantau_reader."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from pantau.cli import _migrate
from pantau.dashboards import (
    DASHBOARDS_DIR,
    QueryWindow,
    VariableChoice,
    check_dashboard,
    expand_sql,
    load_dashboard,
    load_datasources,
    reader_url,
)
from pantau.reference import load_reference

pytestmark = pytest.mark.db

SQL_DASHBOARDS = [
    path for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    if any(load_datasources()[t.datasource_uid].type == "grafana-postgresql-datasource"
           for p in load_dashboard(path).panels for t in p.targets)
]


def describe(results) -> str:
    return "\n".join(f"{r}\n    {r.query}" for r in results if not r.ok)


def test_the_dashboards_with_sql_panels_are_the_three_food_dashboards():
    assert {p.stem for p in SQL_DASHBOARDS} == {"harga", "pasokan", "peringatan"}


@pytest.mark.parametrize("path", SQL_DASHBOARDS, ids=lambda p: p.stem)
def test_every_sql_panel_returns_rows_with_the_columns_its_panel_needs(path, filled_database, data_now):
    results = check_dashboard(path, filled_database, None, now=data_now)
    assert not [r for r in results if not r.ok], "panels without data:\n" + describe(results)
    dashboard = load_dashboard(path)
    for panel in dashboard.panels:
        ran = {r.case for r in results if r.panel == panel.title}
        assert "as opened" in ran, f"{panel.title} ran for {ran}"
    for annotation in dashboard.annotations:
        assert any(r.panel == f"annotation {annotation.name}" and r.rows for r in results)


def test_time_series_panels_get_a_time_column_and_values(filled_database, data_now):
    results = check_dashboard(DASHBOARDS_DIR / "harga.json", filled_database, None, now=data_now)
    # harga opens on every market
    [prices] = [r for r in results if r.panel.startswith("Harga harian per pasar") and r.case == "as opened"]
    assert prices.columns == ["time", "metric", "harga"]
    assert prices.rows > 30  # a month of days for several markets, plus the HET lines


def test_a_database_without_events_fails_the_check(database, data_now):
    """The check is not a formality: with nothing stored, the variables have no values and it says so."""
    _migrate(database)
    results = check_dashboard(DASHBOARDS_DIR / "pasokan.json", database, None, now=data_now)
    assert [r.problem for r in results if not r.ok] == ["the variable's query returned no values"]


def test_grafanas_role_can_read_but_not_write(filled_database):
    with psycopg.connect(reader_url(filled_database), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM price_observations").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM alert_state")


def test_days_of_cover_counts_the_rice_on_the_road_to_cipinang(filled_database, data_now):
    results = check_dashboard(DASHBOARDS_DIR / "pasokan.json", filled_database, None, now=data_now)
    [cover] = [r for r in results if r.panel == "Cakupan pasokan (hari)" and r.case == "as opened"]
    assert "'beras'" in cover.query and "IN ('pibc')" in cover.query
    with psycopg.connect(reader_url(filled_database)) as conn:
        [(destination, days)] = conn.execute(cover.query).fetchall()
    # some 30 rice trucks of 8-20 t on the road or arrived within a day, against 2,900 t a day
    assert destination == "Pasar Induk Beras Cipinang"  # named by ref_markets
    assert 0.05 < days < 0.5


def run_as_grafana(settings, sql: str, now, **values: tuple[str, ...]) -> list[tuple]:
    """`sql` expanded for the last 30 days with each variable set to the given values, run as pantau_reader."""
    variables = {v.name: v for path in SQL_DASHBOARDS for v in load_dashboard(path).variables}
    choices = {name: VariableChoice(variables[name], chosen) for name, chosen in values.items()}
    window = QueryWindow(now - timedelta(days=30), now, timedelta(hours=1))
    with psycopg.connect(reader_url(settings)) as conn:
        return conn.execute(expand_sql(sql, window, choices)).fetchall()


def variable(path, name):
    [found] = [v for v in load_dashboard(path).variables if v.name == name]
    return found


def test_variables_offer_codes_labelled_with_the_indonesian_names_of_the_reference_tables(filled_database, data_now):
    ref = load_reference()
    commodities = dict(run_as_grafana(filled_database, variable(DASHBOARDS_DIR / "harga.json", "commodity").query,
                                      data_now))  # fmt: skip
    assert commodities["beras"] == "Beras"
    assert commodities == {code: ref.commodity(code).name_id for code in commodities}
    markets = dict(run_as_grafana(filled_database, variable(DASHBOARDS_DIR / "harga.json", "market").query, data_now,
                                  commodity=("beras",)))  # fmt: skip
    assert markets["pibc"] == "Pasar Induk Beras Cipinang"
    regencies = dict(run_as_grafana(filled_database, variable(DASHBOARDS_DIR / "pasokan.json", "regency").query,
                                    data_now, commodity=("beras",)))  # fmt: skip
    assert regencies and regencies == {code: ref.regency(code).name for code in regencies}


def test_the_rice_price_panel_draws_the_zone_one_het_of_the_reference_table(filled_database, data_now):
    [panel] = [p for p in load_dashboard(DASHBOARDS_DIR / "harga.json").panels if p.title.startswith("Harga harian")]
    rows = run_as_grafana(filled_database, panel.targets[0].query, data_now, commodity=("beras",),
                          market=("pibc", "prov_18"))  # fmt: skip
    lines = {(metric, price) for _, metric, price in rows if metric.startswith(("HET", "HAP"))}
    assert lines == {("HET medium zona I (retail)", 13500), ("HET premium zona I (retail)", 14900)}
    assert len({day for day, metric, _ in rows if metric.startswith("HET medium")}) >= 30  # a line over the month


@pytest.fixture(scope="module")
def filled_plain_database(postgres_server, data_now):
    """The same month of events in PostgreSQL without TimescaleDB."""
    from tests.conftest import _database
    from tests.integration.dashboards.realistic_data import realistic_events, store_events

    databases = _database(postgres_server, timescaledb=False)
    settings = next(databases)
    _migrate(settings)
    store_events(settings, realistic_events(data_now))
    yield settings
    databases.close()


@pytest.mark.parametrize("path", SQL_DASHBOARDS, ids=lambda p: p.stem)
def test_every_sql_panel_works_on_plain_postgresql_too(path, filled_plain_database, data_now):
    results = check_dashboard(path, filled_plain_database, None, now=data_now)
    assert not [r for r in results if not r.ok], "panels without data:\n" + describe(results)
