"""What Grafana would get wrong silently, checked without Grafana: every panel says what it shows (title,
description, a unit Grafana knows), reads a provisioned data source by uid, and queries only documented
metrics or recording rules that exist; reference data is joined from the database, never copied into SQL."""

from __future__ import annotations

import re

import pytest
import yaml

from pantau.dashboards import (
    DASHBOARDS_DIR,
    DATASOURCES_DIR,
    DOCUMENTED_METRICS,
    GRAFANA_DIR,
    PROMETHEUS_BUILTIN_METRICS,
    dashboard_paths,
    is_grafana_unit,
    load_dashboard,
    load_datasources,
    metric_family,
    promql_metric_names,
    recording_rule_names,
)
from pantau.reference import load_reference
from pantau.settings import REPO_ROOT

DASHBOARDS = [load_dashboard(p) for p in dashboard_paths()]
PANELS = [(d, p) for d in DASHBOARDS for p in d.panels]
DATASOURCES = load_datasources()
RECORDING_RULES = recording_rule_names()


def panel_id(item) -> str:
    dashboard, panel = item
    return f"{dashboard.path.stem}/{panel.title}"


def all_queries():
    for d in DASHBOARDS:
        for p in d.panels:
            for t in p.targets:
                yield d, p.title, t
        for a in d.annotations:
            yield d, f"annotation {a.name}", a.target


def test_the_four_dashboards_of_issue_6_exist_with_pinned_uids():
    assert {d.uid: d.title for d in DASHBOARDS} == {
        "pantau-harga": "Harga pangan Jakarta & Lampung",
        "pantau-pasokan": "Pasokan Lampung → Jakarta",
        "pantau-peringatan": "Peringatan",
        "pantau-pipeline": "Pipeline",
    }


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.path.stem)
def test_dashboards_refresh_every_30s_in_wib_with_a_current_schema(dashboard):
    raw = dashboard.raw
    assert raw["refresh"] == "30s"
    assert raw["timezone"] == "Asia/Jakarta"
    assert 36 <= raw["schemaVersion"] <= 41
    assert raw.get("id") is None, "a provisioned dashboard must not carry a database id"
    assert raw["description"]
    titles = [p.title for p in dashboard.panels]
    assert len(titles) == len(set(titles)), "panel titles repeat"


@pytest.mark.parametrize("item", PANELS, ids=panel_id)
def test_every_panel_has_a_title_a_description_and_a_unit_grafana_knows(item):
    _, panel = item
    assert panel.title.strip()
    assert len(panel.description) >= 40, "the description says what the panel shows and from where"
    assert panel.unit, "fieldConfig.defaults.unit is missing"
    for unit in [panel.unit, *panel.override_units]:
        assert is_grafana_unit(unit), f"{unit!r} is not a Grafana unit id (see pantau.dashboards.GRAFANA_UNITS)"


@pytest.mark.parametrize("item", PANELS, ids=panel_id)
def test_every_panel_reads_a_provisioned_datasource_by_uid(item):
    _, panel = item
    assert isinstance(panel.raw.get("datasource"), dict), "name the data source as {type, uid}"
    assert panel.datasource_uid in DATASOURCES
    assert panel.raw["datasource"]["type"] == DATASOURCES[panel.datasource_uid].type
    assert panel.targets
    for target in panel.targets:
        assert target.datasource_uid in DATASOURCES


def test_every_variable_and_annotation_reads_a_provisioned_datasource():
    for dashboard in DASHBOARDS:
        for variable in dashboard.variables:
            assert variable.datasource_uid in DATASOURCES, f"{dashboard.title} ${variable.name}"
        for annotation in dashboard.annotations:
            assert annotation.datasource_uid in DATASOURCES, f"{dashboard.title} {annotation.name}"


def test_the_food_dashboards_offer_commodity_market_and_regency_from_the_database():
    by_uid = {d.uid: {v.name: v for v in d.variables} for d in DASHBOARDS}
    assert {"commodity", "market"} <= set(by_uid["pantau-harga"])
    assert {"commodity", "market", "regency"} <= set(by_uid["pantau-pasokan"])
    for uid in ("pantau-harga", "pantau-pasokan"):
        for variable in by_uid[uid].values():
            assert variable.type == "query"
            assert DATASOURCES[variable.datasource_uid].type == "grafana-postgresql-datasource"


def test_price_spikes_are_annotations_on_the_price_dashboard():
    [harga] = [d for d in DASHBOARDS if d.uid == "pantau-harga"]
    assert any("price_spike" in a.target.query for a in harga.annotations)


@pytest.mark.parametrize("item", [q for q in all_queries() if DATASOURCES[q[2].datasource_uid].type == "prometheus"],
                         ids=lambda q: f"{q[0].path.stem}/{q[1]}/{q[2].ref_id}")
def test_promql_uses_only_documented_metrics_and_existing_recording_rules(item):
    _, _, target = item
    names = promql_metric_names(target.query)
    assert names, f"no metric found in {target.query!r}"
    for name in names:
        if ":" in name:
            assert name in RECORDING_RULES, f"recording rule {name} is not defined in deploy/prometheus/rules"
        else:
            assert metric_family(name) in DOCUMENTED_METRICS or name in PROMETHEUS_BUILTIN_METRICS, (
                f"{name} is not a documented metric (pantau.dashboards.DOCUMENTED_METRICS)")


def test_the_pipeline_dashboards_heavy_queries_use_recording_rules():
    [pipeline] = [d for d in DASHBOARDS if d.uid == "pantau-pipeline"]
    used = {n for p in pipeline.panels for t in p.targets for n in promql_metric_names(t.query)}
    assert len(used & RECORDING_RULES) >= 8
    heavy = re.compile(r"\b(rate|irate|increase|histogram_quantile)\(")
    assert not [t.query for p in pipeline.panels for t in p.targets if heavy.search(t.query)]


# --- reference data is joined from the ref_* tables, never copied into SQL ------------------------
_SQL_STRING = re.compile(r"'((?:[^']|'')*)'")
_SQL_NUMBER = re.compile(r"(?<![\w.$])\d+(?:\.\d+)?(?![\w.])")


def reference_strings() -> dict[str, str]:
    """Every code and name in contracts/reference/ (casefolded) -> where it comes from."""
    ref = load_reference()
    found: dict[str, str] = {}
    for c in ref.commodities:
        found |= {c.code.casefold(): "commodity code", c.name_id.casefold(): "commodity name",
                  c.name_en.casefold(): "commodity name"}
    for m in ref.markets:
        found |= {m.code.casefold(): "market code", m.name.casefold(): "market name"}
    for r in ref.regencies:
        found |= {r.code.casefold(): "regency code", r.name.casefold(): "regency name"}
    for k in ref.checkpoints:
        found |= {k.code.casefold(): "checkpoint code", k.name.casefold(): "checkpoint name"}
    return found


def reference_figures() -> dict[float, str]:
    """HET/HAP prices, daily requirements, inflows and safe stocks -> what they are."""
    ref = load_reference()
    found = {p.price_idr: f"{c.code} {p.kind.upper()} price" for c in ref.commodities for p in c.reference_prices}
    for m in ref.markets:
        for s in m.supply:
            ranges = [r for r in (s.typical_inflow_kg_per_day, s.safe_stock_kg) if r]
            figures = [s.daily_requirement_kg, *(v for r in ranges for v in (r.min, r.max))]
            found |= {float(v): f"{m.code} {s.commodity} supply figure" for v in figures if v is not None}
    return found


def sql_texts():
    for dashboard, title, target in all_queries():
        if DATASOURCES[target.datasource_uid].type == "grafana-postgresql-datasource":
            yield dashboard, title, target.query
    for dashboard in DASHBOARDS:
        for variable in dashboard.variables:
            if DATASOURCES[variable.datasource_uid].type == "grafana-postgresql-datasource":
                yield dashboard, f"${variable.name}", variable.query


SQL_TEXTS = list(sql_texts())


@pytest.mark.parametrize("item", SQL_TEXTS, ids=lambda q: f"{q[0].path.stem}/{q[1]}")
def test_dashboard_sql_holds_no_copy_of_reference_data(item):
    """Names, codes, HET/HAP prices and requirements come from the ref_* tables by join."""
    _, _, sql = item
    strings, figures = reference_strings(), reference_figures()
    copied = [f"'{s}' ({strings[s.casefold()]})" for s in _SQL_STRING.findall(sql) if s.casefold() in strings]
    copied += [f"{n} ({figures[float(n)]})" for n in _SQL_NUMBER.findall(sql) if float(n) in figures]
    assert not copied, f"reference data copied into the SQL: {copied}; join the ref_* tables instead"
    assert "-- reference:" not in sql


def test_the_copy_check_finds_a_copied_name_and_price():
    strings, figures = reference_strings(), reference_figures()
    sql = "SELECT 'Pasar Induk Beras Cipinang', 13500 FROM (VALUES ('beras')) v"
    assert [s for s in _SQL_STRING.findall(sql) if s.casefold() in strings] == ["Pasar Induk Beras Cipinang", "beras"]
    assert [n for n in _SQL_NUMBER.findall(sql) if float(n) in figures] == ["13500"]


def test_names_het_hap_and_requirements_are_joined_from_the_reference_tables():
    joined = " ".join(sql for _, _, sql in SQL_TEXTS)
    for table in ("ref_commodities", "ref_markets", "ref_regencies", "ref_checkpoints", "ref_reference_prices",
                  "ref_market_requirements"):
        assert table in joined, f"no dashboard reads {table}"


# --- units -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", ["suffix:IDR/kg", "percent", "percentunit", "masst", "s", "d", "none",
                                  "dateTimeAsIso", "short", "suffix:event/s"])
def test_units_the_dashboards_use_are_grafana_units(unit):
    assert is_grafana_unit(unit)


@pytest.mark.parametrize("unit", ["currencyIDR", "rupiah", "suffix:", "IDR/kg", "seconds", "kg"])
def test_made_up_units_are_refused(unit):
    assert not is_grafana_unit(unit)


# --- provisioning ------------------------------------------------------------------------------------
def test_datasources_are_provisioned_with_pinned_uids_and_the_read_only_role():
    [path] = DATASOURCES_DIR.glob("*.yml")
    config = yaml.safe_load(path.read_text())
    by_uid = {d["uid"]: d for d in config["datasources"]}
    tsdb = by_uid["pantau-timescaledb"]
    assert tsdb["type"] == "grafana-postgresql-datasource"
    assert tsdb["url"] == "timescaledb:5432"
    assert tsdb["user"] == "pantau_reader"
    assert tsdb["jsonData"]["database"] == "pantau"
    assert tsdb["jsonData"]["timescaledb"] is True
    assert tsdb["secureJsonData"]["password"] == "$DATABASE_READER_PASSWORD"
    prometheus = by_uid["pantau-prometheus"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    scrape = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text())["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape, "$__rate_interval is built on the scrape interval"


def test_dashboards_are_provisioned_from_the_mounted_folder_into_pantau_pangan():
    [path] = (GRAFANA_DIR / "provisioning" / "dashboards").glob("*.yml")
    [provider] = yaml.safe_load(path.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "Pantau Pangan"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in compose["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in compose["volumes"]
    assert "DATABASE_READER_PASSWORD" in compose["environment"]


def test_only_dashboards_live_in_the_dashboards_folder():
    assert {p.suffix for p in DASHBOARDS_DIR.iterdir()} == {".json"}
