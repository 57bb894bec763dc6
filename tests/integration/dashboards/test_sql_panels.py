"""Every SQL panel, variable and annotation of the dashboards, run as Grafana runs them: macros and
variables expanded (each variable at its first value, and at "All"), against TimescaleDB holding a
month of realistic events, as the read-only role pantau_reader."""

from __future__ import annotations

import psycopg
import pytest

from pantau.cli import _migrate
from pantau.dashboards import (
    DASHBOARDS_DIR,
    check_dashboard,
    load_dashboard,
    load_datasources,
    reader_url,
)

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
    cases = {"first values", "All"} if any(v.include_all for v in dashboard.variables) else {"first values"}
    for panel in dashboard.panels:
        ran = {r.case for r in results if r.panel == panel.title}
        assert ran == cases, f"{panel.title} ran for {ran}, expected {cases}"
    for annotation in dashboard.annotations:
        assert any(r.panel == f"annotation {annotation.name}" and r.rows for r in results)


def test_time_series_panels_get_a_time_column_and_values(filled_database, data_now):
    results = check_dashboard(DASHBOARDS_DIR / "harga.json", filled_database, None, now=data_now)
    [prices] = [r for r in results if r.panel.startswith("Harga harian per pasar") and r.case == "All"]
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
    [cover] = [r for r in results if r.panel == "Cakupan pasokan (hari)" and r.case == "first values"]
    assert "'beras'" in cover.query and "IN ('pibc')" in cover.query
    with psycopg.connect(reader_url(filled_database)) as conn:
        [(destination, days)] = conn.execute(cover.query).fetchall()
    # some 30 rice trucks of 8-20 t on the road or arrived within a day, against 2,900 t a day
    assert destination == "pibc"
    assert 0.05 < days < 0.5
