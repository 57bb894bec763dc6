"""The checker expands queries the way Grafana does (grafana-postgresql-datasource macros.go, the SQL
data sources' variable formatting, the global variables), so what runs in the tests is what Grafana sends."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pantau.dashboards import (
    Dashboard,
    DashboardChecker,
    DashboardError,
    QueryWindow,
    Variable,
    VariableChoice,
    _check_sql_result,
    expand_promql,
    expand_sql,
    format_interval,
    grafana_interval,
    metric_family,
    parse_grafana_time,
    promql_metric_names,
)

START = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
END = datetime(2026, 3, 5, 1, 0, 0, 500000, tzinfo=UTC)
WINDOW = QueryWindow(START, END, timedelta(minutes=1))


def variable(name="market", multi=False, include_all=False, all_value=None) -> Variable:
    return Variable(name, "query", "pantau-timescaledb", "SELECT 1", multi, include_all, all_value)


def test_time_filter_is_a_between_of_rfc3339_utc_instants():
    assert expand_sql("WHERE $__timeFilter(occurred_at)", WINDOW) == (
        "WHERE occurred_at BETWEEN '2026-03-04T01:00:00Z' AND '2026-03-05T01:00:00.5Z'")


def test_time_from_and_to_are_quoted_instants():
    assert expand_sql("$__timeFrom()::timestamptz, $__timeTo()", WINDOW) == (
        "'2026-03-04T01:00:00Z'::timestamptz, '2026-03-05T01:00:00.5Z'")


def test_time_group_is_time_bucket_on_timescaledb_and_epoch_arithmetic_elsewhere():
    assert expand_sql("SELECT $__timeGroup(t, '1h') FROM x", WINDOW) == "SELECT time_bucket('3600.000s',t) FROM x"
    assert expand_sql("SELECT $__timeGroup(t, 5m) FROM x", WINDOW, timescaledb=False) == (
        "SELECT floor(extract(epoch from t)/300)*300 FROM x")


def test_time_group_followed_by_a_comma_gets_the_time_alias_as_in_grafana():
    assert expand_sql("SELECT $__timeGroup(t, $__interval), v", WINDOW) == (
        "SELECT time_bucket('60.000s',t) AS \"time\", v")
    assert expand_sql("SELECT $__timeGroupAlias(t, 1d)", WINDOW) == "SELECT time_bucket('86400.000s',t) AS \"time\""


def test_unix_epoch_macros_and_global_variables():
    sql = "$__unixEpochFilter(ts) $__unixEpochFrom() $__unixEpochTo() $__interval $__interval_ms $__range"
    assert expand_sql(sql, WINDOW).split(" ") == [
        "ts", ">=", "1772586000", "AND", "ts", "<=", "1772672400", "1772586000", "1772672400", "1m", "60000", "86400s"]


def test_a_single_value_variable_is_inserted_raw_with_quotes_doubled():
    choice = {"commodity": VariableChoice(variable("commodity"), ("cabai'merah",))}
    assert expand_sql("WHERE commodity = '$commodity'", WINDOW, choice) == "WHERE commodity = 'cabai''merah'"


def test_multi_value_and_all_variables_become_quoted_lists():
    multi = VariableChoice(variable(multi=True, include_all=True), ("pibc",))
    assert expand_sql("market_code IN ($market)", WINDOW, {"market": multi}) == "market_code IN ('pibc')"
    everything = VariableChoice(variable(multi=True, include_all=True), ("pibc", "pikj"), all=True)
    assert expand_sql("market_code IN (${market})", WINDOW, {"market": everything}) == "market_code IN ('pibc','pikj')"
    custom_all = VariableChoice(variable(include_all=True, all_value="market_code"), ("pibc",), all=True)
    assert expand_sql("market_code IN ([[market]])", WINDOW, {"market": custom_all}) == "market_code IN (market_code)"


def test_variable_formats_csv_and_sqlstring():
    choice = {"market": VariableChoice(variable(multi=True), ("pibc", "pikj"))}
    assert expand_sql("${market:csv} ${market:sqlstring}", WINDOW, choice) == "pibc,pikj 'pibc','pikj'"


def test_an_unknown_variable_or_macro_is_an_error_naming_it():
    with pytest.raises(DashboardError, match=r"\$comodity is neither a dashboard variable nor a Grafana macro"):
        expand_sql("WHERE commodity = '$comodity'", WINDOW)
    with pytest.raises(DashboardError, match="unknown macro"):
        expand_sql("WHERE $__timeFiltr(t)", WINDOW)


def test_promql_rate_interval_and_regex_variables():
    window = QueryWindow(START, END, timedelta(seconds=20))
    job_variable = Variable("job", "query", "pantau-prometheus", "", True, True, None)
    job = VariableChoice(job_variable, ("sink", "api.x"), all=True)
    expanded = expand_promql('rate(pantau_events_consumed_total{job=~"$job"}[$__rate_interval])', window, {"job": job})
    assert expanded == 'rate(pantau_events_consumed_total{job=~"(sink|api\\\\.x)"}[1m])'


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (job, topic) (rate(pantau_events_consumed_total{job="sink"}[5m]))', {"pantau_events_consumed_total"}),
    ("time() - max by (job, topic) (pantau_last_event_timestamp_seconds)", {"pantau_last_event_timestamp_seconds"}),
    ("job_topic:pantau_events_deadlettered:ratio_rate5m or on() vector(0)",
     {"job_topic:pantau_events_deadlettered:ratio_rate5m"}),
    ('histogram_quantile(0.99, sum by (le) (rate(pantau_sink_batch_duration_seconds_bucket[$__rate_interval])))',
     {"pantau_sink_batch_duration_seconds_bucket"}),
    ("up == bool 0 unless on (job) x:y:z offset 5m", {"up", "x:y:z"}),
])
def test_metric_names_are_found_in_promql(expr, names):
    assert promql_metric_names(expr) == names


def test_histogram_series_belong_to_their_documented_family():
    assert metric_family("pantau_sink_batch_duration_seconds_bucket") == "pantau_sink_batch_duration_seconds"
    assert metric_family("pantau_events_consumed_total") == "pantau_events_consumed_total"
    assert metric_family("pantau_made_up_bucket") == "pantau_made_up_bucket"


def test_intervals_follow_grafanas_rounding_and_minimum():
    thirty_days = (START - timedelta(days=30), START)
    assert grafana_interval(*thirty_days, 1000, timedelta(minutes=1)) == timedelta(minutes=30)
    six_hours = (START - timedelta(hours=6), START)
    assert grafana_interval(*six_hours, 1000, timedelta(seconds=15)) == timedelta(seconds=20)
    assert grafana_interval(*six_hours, 1000, timedelta(minutes=1)) == timedelta(minutes=1)
    assert [format_interval(timedelta(seconds=s)) for s in (0.5, 30, 90, 7200, 86400 * 3)] == [
        "500ms", "30s", "1m", "2h", "3d"]


@given(st.integers(min_value=60, max_value=400 * 86400), st.integers(min_value=100, max_value=3000))
def test_the_interval_stays_near_range_over_points_and_never_under_the_minimum(range_s, points):
    end = START
    interval = grafana_interval(end - timedelta(seconds=range_s), end, points, timedelta(seconds=15))
    raw = range_s / points
    assert interval >= timedelta(seconds=15)
    # Grafana rounds to "nice" intervals: up by less than 2x, down by up to 7x (2 days -> 1 day ... 1 week)
    assert interval.total_seconds() <= max(15, 2 * raw)
    assert interval.total_seconds() >= raw / 7


@given(st.lists(st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s), min_size=1, max_size=5))
def test_sql_list_formatting_round_trips_any_text(values):
    choice = {"v": VariableChoice(variable("v", multi=True), tuple(values))}
    expanded = expand_sql("x IN ($v)", WINDOW, choice) if not any("$" in v or "[[" in v for v in values) else None
    if expanded is None:
        return  # text that looks like a variable is not a realistic option value
    literals = re.findall(r"'((?:[^']|'')*)'", expanded[len("x IN ("):-1])
    assert [lit.replace("''", "'") for lit in literals] == values


def test_relative_dashboard_times():
    now = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    assert parse_grafana_time("now-30d", now) == now - timedelta(days=30)
    assert parse_grafana_time("now", now) == now
    with pytest.raises(DashboardError):
        parse_grafana_time("yesterday", now)


@pytest.mark.parametrize(("panel_type", "fmt", "columns", "rows", "fields", "problem"), [
    ("timeseries", "time_series", [("day", "timestamptz"), ("v", "float8")], [(START, 1.0)], (),
     "a time series query needs a column named time"),
    ("timeseries", "time_series", [("time", "timestamptz"), ("metric", "text")], [(START, "a")], (),
     "a time series query needs at least one numeric value column"),
    ("table", "table", [("Pasar", "text"), ("Harga", "float8")], [("pibc", 1.0)], ("Harga", "Waktu"),
     "the panel's field overrides name columns the query does not return: ['Waktu']"),
    ("stat", "table", [("n", "int8")], [(None,)], (), "every value in the numeric columns ['n'] is NULL"),
    ("bargauge", "table", [("n", "int8")], [], (), "the query returned no rows"),
])
def test_results_a_panel_could_not_show_are_reported(panel_type, fmt, columns, rows, fields, problem):
    assert _check_sql_result(panel_type, fmt, columns, rows, fields).startswith(problem)


def test_a_result_with_time_and_values_is_fine():
    columns = [("time", "timestamptz"), ("metric", "text"), ("harga", "float8")]
    assert _check_sql_result("timeseries", "time_series", columns, [(START, "pibc", 12850.0)], ()) is None


def _dashboard_with(*variables: Variable) -> Dashboard:
    return Dashboard(path=Path("d.json"), uid="d", title="d", time_from="now-6h", time_to="now", panels=(),
                     variables=variables, annotations=(), raw={})


def _custom(name: str, options: str, saved: tuple[str, ...], multi: bool = False) -> Variable:
    return Variable(name=name, type="custom", datasource_uid=None, query=options, multi=multi,
                    include_all=multi, all_value=None, saved=saved)


def _selections(dashboard: Dashboard) -> dict[str, dict[str, tuple[tuple[str, ...], bool]]]:
    checker = DashboardChecker(None, None, datasources={})
    now = datetime(2026, 11, 26, tzinfo=UTC)
    cases = checker.variable_cases(dashboard, now - timedelta(hours=6), now, [])
    return {case: {name: (choice.values, choice.all) for name, choice in choices.items()} for case, choices in cases}


def test_a_dashboard_opens_on_its_saved_selection_as_grafana_does():
    dashboard = _dashboard_with(_custom("commodity", "bawang_merah,beras,jagung", ("beras",)),
                                _custom("market", "pibc,pikj", ("$__all",), multi=True))
    cases = _selections(dashboard)
    assert cases["as opened"] == {"commodity": (("beras",), False), "market": (("pibc", "pikj"), True)}
    assert "All" not in cases  # the same selection as opened: not run twice


def test_a_dashboard_saved_on_one_market_is_also_checked_with_all_markets():
    dashboard = _dashboard_with(_custom("market", "pibc,pikj", ("pikj",), multi=True))
    assert _selections(dashboard) == {"as opened": {"market": (("pikj",), False)},
                                      "All": {"market": (("pibc", "pikj"), True)}}


def test_a_saved_value_no_longer_offered_falls_back_to_the_first_option():
    cases = _selections(_dashboard_with(_custom("commodity", "bawang_merah,jagung", ("beras",))))
    assert cases == {"as opened": {"commodity": (("bawang_merah",), False)}}
