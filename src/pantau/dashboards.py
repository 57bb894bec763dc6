"""Grafana dashboards as tested code, without a Grafana server (none runs on our machines).

Loads the classic dashboard JSON in grafana/dashboards/, lists every panel's queries, expands what
Grafana would expand before a query reaches its data source, and runs each query for real:

* SQL (TimescaleDB data source): template variables as Grafana's SQL data sources format them
  (a single value raw, multi-value or include-All variables as quoted literals joined by commas),
  the global variables ($__interval, $__interval_ms, $__range, $__from, $__to, $__unixEpochFrom(),
  $__unixEpochTo()) and the PostgreSQL macros ($__timeFilter, $__timeGroup, $__timeGroupAlias,
  $__timeFrom, $__timeTo, $__unixEpochFilter, ...), as grafana/grafana
  pkg/tsdb/grafana-postgresql-datasource/macros.go writes them. Queries run as the read-only role
  pantau_reader, as Grafana does.
* PromQL (Prometheus data source): variables (regex-formatted when multi-value), $__interval,
  $__rate_interval and $__range, then a range query (or an instant query for instant targets).

`check_dashboard(path, database_settings, prometheus_url)` runs every query of a dashboard and returns
one `PanelResult` per query and variable case (each variable at its first value, and at "All" when
the variable offers it); a query that fails or returns nothing is a failed result.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from pantau.settings import REPO_ROOT, Settings

GRAFANA_DIR = REPO_ROOT / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DATASOURCES_DIR = GRAFANA_DIR / "provisioning" / "datasources"
RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"

POSTGRES_TYPE = "grafana-postgresql-datasource"
PROMETHEUS_TYPE = "prometheus"
READER_ROLE = "pantau_reader"

# Metric names every service, dashboard and alert rule shares (the helper brief's contract).
# name -> (type, labels). Histograms are queried through their _bucket, _sum and _count series.
DOCUMENTED_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pantau_events_produced_total": ("counter", ("topic", "event_type")),
    "pantau_produce_errors_total": ("counter", ("topic", "error")),
    "pantau_produce_latency_seconds": ("histogram", ("topic",)),
    "pantau_events_consumed_total": ("counter", ("topic",)),
    "pantau_events_deadlettered_total": ("counter", ("topic", "reason")),
    "pantau_consumer_lag_messages": ("gauge", ("topic", "partition")),
    "pantau_last_event_timestamp_seconds": ("gauge", ("topic", "partition")),
    "pantau_alerts_emitted_total": ("counter", ("alert_type", "transition", "severity")),
    "pantau_processor_processing_seconds": ("histogram", ("topic",)),
    "pantau_event_to_alert_latency_seconds": ("histogram", ("alert_type",)),
    "pantau_price_last_observed_timestamp_seconds": ("gauge", ("market",)),
    "pantau_processor_late_events_total": ("counter", ("topic",)),
    "pantau_processor_duplicates_total": ("counter", ("topic",)),
    "pantau_sink_rows_written_total": ("counter", ("table",)),
    "pantau_sink_batch_duration_seconds": ("histogram", ()),
    "pantau_sink_batch_rows": ("histogram", ()),
    "pantau_sink_write_errors_total": ("counter", ("table", "error")),
    "pantau_sink_database_up": ("gauge", ()),
    "pantau_http_requests_total": ("counter", ("service", "route", "method", "status")),
    "pantau_http_request_duration_seconds": ("histogram", ("service", "route", "method")),
    "pantau_webhook_deliveries_total": ("counter", ("outcome",)),
    "pantau_webhook_delivery_seconds": ("histogram", ()),
    "pantau_webhook_pending_deliveries": ("gauge", ()),
    "pantau_webhook_deadlettered_total": ("counter", ()),
    # services/simulator: wall clock minus simulation clock (the backfill still to catch up)
    "pantau_simulator_wall_clock_lag_seconds": ("gauge", ()),
}
# Series Prometheus writes itself for every scrape target.
PROMETHEUS_BUILTIN_METRICS = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

# Every unit id Grafana knows (grafana/grafana packages/grafana-data/src/valueFormats/categories.ts).
# Grafana renders an unknown id as a literal suffix without complaint ("12850 currencyIDR"), so the
# dashboards' units are checked against this list. There is no rupiah unit: prices use the custom
# unit "suffix:IDR/kg".
GRAFANA_UNITS = frozenset(
    """
    none string short percent percentunit humidity dB hex0x hex sci locale pixel
    accMS2 accFS2 accG degree radian grad arcmin arcsec areaM2 areaF2 areaMI2
    flops mflops gflops tflops pflops eflops zflops yflops
    ppm conppb conngm3 conngNm3 conμgm3 conμgNm3 conmgm3 conmgNm3 congm3 congNm3 conmgdL conmmolL
    currencyUSD currencyGBP currencyEUR currencyJPY currencyRUB currencyUAH currencyBRL currencyDKK
    currencyISK currencyNOK currencySEK currencyCZK currencyCHF currencyPLN currencyBTC currencymBTC
    currencyμBTC currencyZAR currencyINR currencyKRW
    bits bytes kbytes mbytes gbytes tbytes pbytes decbits decbytes deckbytes decmbytes decgbytes
    dectbytes decpbytes pps bps Bps KBs Kbits MBs Mbits GBs Gbits TBs Tbits PBs Pbits
    dateTimeAsIso dateTimeAsIsoNoDateIfToday dateTimeAsUS dateTimeAsUSNoDateIfToday dateTimeFromNow
    watt kwatt megwatt gwatt mwatt Wm2 voltamp kvoltamp voltampreact kvoltampreact watth watthperkg
    kwatth kwattm amph kamph mamph joule ev amp kamp mamp volt kvolt mvolt dBm ohm kohm Mohm farad
    µfarad nfarad pfarad ffarad henry mhenry µhenry lumens
    flowgpm flowcms flowcfs flowcfm litreh flowlpm flowmlpm lux forceNm forcekNm forceN forcekN
    Hs KHs MHs GHs THs PHs EHs massmg massg masskg masst lengthmm lengthft lengthm lengthkm lengthmi
    pressurembar pressurebar pressurekbar pressurepa pressurehpa pressurekpa pressurehg pressurepsi
    radbq radci radgy radrad radsv radmsv radusv radrem radexpckg radr radsvh radmsvh radusvh
    rotrpm rothz rotrads rotdegs celsius fahrenheit kelvin
    hertz ns µs ms s m h d dtdurationms dtdurations dthms dtdhms timeticks clockms clocks
    cps ops reqps rps wps iops cpm opm rpm wpm velocityms velocitykmh velocitymph velocityknot
    mlitre litre m3 Nm3 dm3 gallons
    """.split()
)
# Custom units Grafana builds from a prefix (valueFormats.ts getValueFormat): "suffix:IDR/kg", ...
GRAFANA_CUSTOM_UNIT_KINDS = ("prefix", "suffix", "time", "si", "count", "currency", "bool")

_NUMERIC_TYPES = {"int2", "int4", "int8", "float4", "float8", "numeric", "oid"}
_TIME_TYPES = {"timestamptz", "timestamp", "date"}
_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "char", "uuid"}


def is_grafana_unit(unit: str) -> bool:
    """True for a unit id Grafana formats (a known id, or a custom unit such as "suffix:IDR/kg")."""
    if unit in GRAFANA_UNITS:
        return True
    kind, colon, rest = unit.partition(":")
    return bool(colon) and kind in GRAFANA_CUSTOM_UNIT_KINDS and bool(rest)


# --- Model -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One query of a panel (or of an annotation)."""

    ref_id: str
    datasource_uid: str
    query: str  # rawSql for SQL, expr for PromQL
    format: str  # SQL: "time_series" | "table"; PromQL: "time_series"
    instant: bool = False
    legend_format: str = ""


@dataclass(frozen=True)
class Panel:
    id: int
    title: str
    type: str
    description: str
    unit: str | None
    datasource_uid: str | None
    targets: tuple[Target, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def override_units(self) -> list[str]:
        return [
            prop["value"]
            for override in self.raw.get("fieldConfig", {}).get("overrides", [])
            for prop in override.get("properties", [])
            if prop.get("id") == "unit"
        ]

    @property
    def fields_named_in_overrides(self) -> list[str]:
        """Columns the panel's field overrides refer to by name (they must exist in the result)."""
        return [
            override["matcher"]["options"]
            for override in self.raw.get("fieldConfig", {}).get("overrides", [])
            if override.get("matcher", {}).get("id") == "byName"
        ]


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    datasource_uid: str | None
    query: str
    multi: bool
    include_all: bool
    all_value: str | None
    saved: tuple[str, ...] = ()  # the selection saved with the dashboard ("current"); ("$__all",) for All


@dataclass(frozen=True)
class Annotation:
    name: str
    datasource_uid: str
    target: Target


@dataclass(frozen=True)
class Dashboard:
    path: Path
    uid: str
    title: str
    time_from: str
    time_to: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...]
    annotations: tuple[Annotation, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)


class DashboardError(ValueError):
    """A dashboard file or one of its queries cannot be read or expanded; the message says where."""


def _uid_of(datasource: Any) -> str | None:
    if isinstance(datasource, dict):
        return datasource.get("uid")
    return datasource  # legacy dashboards name the data source by a plain string


def _target(raw: Mapping[str, Any], default_uid: str | None, where: str) -> Target:
    uid = _uid_of(raw.get("datasource")) or default_uid
    query = raw.get("rawSql") if "rawSql" in raw else raw.get("expr")
    if not uid or query is None:
        raise DashboardError(f"{where} query {raw.get('refId', '?')} needs a data source uid and rawSql or expr")
    return Target(
        ref_id=raw.get("refId", "A"),
        datasource_uid=uid,
        query=query,
        format=raw.get("format", "time_series"),
        instant=bool(raw.get("instant")) and not raw.get("range", False),
        legend_format=raw.get("legendFormat", ""),
    )


def _flatten_panels(panels: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for panel in panels:
        if panel.get("type") == "row":
            yield from _flatten_panels(panel.get("panels", []))  # collapsed rows hold their panels
        else:
            yield panel


def _saved_values(current: Any) -> tuple[str, ...]:
    """A variable's saved selection ("current"); ("$__all",) for "All"."""
    values = (current or {}).get("value") or ()
    return (values,) if isinstance(values, str) else tuple(str(v) for v in values)


def load_dashboard(path: Path | str) -> Dashboard:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DashboardError(f"cannot read dashboard {path}: {exc}") from exc
    panels = []
    for p in _flatten_panels(raw.get("panels", [])):
        uid = _uid_of(p.get("datasource"))
        where = f"{path.name} panel {p.get('title', p.get('id'))!r}"
        panels.append(
            Panel(
                id=p.get("id", 0),
                title=p.get("title", ""),
                type=p.get("type", ""),
                description=p.get("description", ""),
                unit=p.get("fieldConfig", {}).get("defaults", {}).get("unit"),
                datasource_uid=uid,
                targets=tuple(_target(t, uid, where) for t in p.get("targets", [])),
                raw=p,
            )
        )
    variables = []
    for v in raw.get("templating", {}).get("list", []):
        query = v.get("query", "")
        if isinstance(query, dict):  # newer editors store {"query": ..., "refId": ...}
            query = query.get("query", query.get("rawSql", ""))
        variables.append(
            Variable(
                name=v["name"],
                type=v.get("type", "query"),
                datasource_uid=_uid_of(v.get("datasource")),
                query=query,
                multi=bool(v.get("multi")),
                include_all=bool(v.get("includeAll")),
                all_value=v.get("allValue") or None,
                saved=_saved_values(v.get("current")),
            )
        )
    annotations = []
    for a in raw.get("annotations", {}).get("list", []):
        if a.get("builtIn"):
            continue  # Grafana's own annotation store, not a query
        uid = _uid_of(a.get("datasource"))
        target = a.get("target", {})
        annotations.append(
            Annotation(
                name=a.get("name", ""),
                datasource_uid=uid or "",
                target=_target({"format": "table", **target}, uid, f"{path.name} annotation {a.get('name')!r}"),
            )
        )
    time = raw.get("time", {})
    return Dashboard(
        path=path,
        uid=raw.get("uid", ""),
        title=raw.get("title", ""),
        time_from=time.get("from", "now-6h"),
        time_to=time.get("to", "now"),
        panels=tuple(panels),
        variables=tuple(variables),
        annotations=tuple(annotations),
        raw=raw,
    )


def dashboard_paths(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    return sorted(directory.glob("*.json"))


@dataclass(frozen=True)
class Datasource:
    uid: str
    type: str
    name: str
    json_data: Mapping[str, Any]


def load_datasources(directory: Path = DATASOURCES_DIR) -> dict[str, Datasource]:
    """The provisioned data sources by uid."""
    found = {}
    for path in sorted(directory.glob("*.y*ml")):
        for ds in (yaml.safe_load(path.read_text()) or {}).get("datasources", []):
            found[ds["uid"]] = Datasource(ds["uid"], ds["type"], ds["name"], ds.get("jsonData", {}))
    return found


def recording_rule_names(directory: Path = RULES_DIR) -> set[str]:
    return {
        rule["record"]
        for path in directory.glob("*.yml")
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", [])
        for rule in group.get("rules", [])
        if "record" in rule
    }


# --- PromQL metric names ----------------------------------------------------------------------------
_PROMQL_KEYWORDS = frozenset(
    "by without on ignoring group_left group_right bool and or unless offset inf nan atan2".split()
)
_PROMQL_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_PROMQL_BRACES = re.compile(r"\{[^{}]*\}")
_PROMQL_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_PROMQL_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
# A whole identifier (no backtracking into "tim" of "time(") that is not a function call.
_PROMQL_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, keywords, label names or durations)."""
    text = _PROMQL_STRING.sub('""', expr)
    text = _PROMQL_BRACES.sub("", text)
    text = _PROMQL_BRACKETS.sub("", text)
    text = _PROMQL_LABEL_LISTS.sub("", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables ($__rate_interval, ...)
    names = set()
    for match in _PROMQL_IDENTIFIER.finditer(text):
        name = match.group(1)
        if name.lower() in _PROMQL_KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def metric_family(name: str) -> str:
    """`pantau_x_seconds_bucket` -> `pantau_x_seconds` for documented histograms; else the name."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and DOCUMENTED_METRICS.get(base, ("",))[0] == "histogram":
            return base
    return name


# --- Time ranges and intervals ------------------------------------------------------------------------
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|M|y)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}


def parse_duration(text: str) -> timedelta:
    """Grafana's interval syntax: 30s, 5m, 1h, 1d, 1w ..."""
    match = _DURATION.match(text.strip().strip("'\""))
    if not match:
        raise DashboardError(f"cannot read the interval {text!r}; write it like 30s, 5m, 1h or 1d")
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def parse_grafana_time(text: str, now: datetime) -> datetime:
    """"now", "now-7d" (relative) or an ISO timestamp."""
    if text == "now":
        return now
    if text.startswith("now-"):
        return now - parse_duration(text[4:])
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DashboardError(f"cannot read the dashboard time {text!r}") from exc


def format_interval(interval: timedelta) -> str:
    """As Grafana's gtime.FormatInterval: the largest whole unit (1d, 2h, 30s, 500ms)."""
    ms = int(interval.total_seconds() * 1000)
    for unit, size in (("y", 31536000000), ("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{max(ms, 1)}ms"


# Grafana's rangeutil.roundInterval: below the first bound, round to the second (milliseconds).
_ROUND_INTERVAL_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000),
    (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000), (90000, 60000),
    (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
    (2700000, 1800000), (5400000, 3600000), (9000000, 7200000), (16200000, 10800000),
    (32400000, 21600000), (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000),
)


def grafana_interval(start: datetime, end: datetime, max_data_points: int, min_interval: timedelta) -> timedelta:
    """$__interval as Grafana computes it: range / data points, rounded, at least the minimum."""
    raw_ms = (end - start).total_seconds() * 1000 / max_data_points
    rounded = next((to for below, to in _ROUND_INTERVAL_MS if raw_ms < below), 31536000000)
    return max(timedelta(milliseconds=rounded), min_interval)


def _rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, Z for UTC."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass(frozen=True)
class QueryWindow:
    """What Grafana knows when it sends a query: the time range and the panel's interval."""

    start: datetime
    end: datetime
    interval: timedelta

    @property
    def range(self) -> timedelta:
        return self.end - self.start


# --- Variables ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VariableChoice:
    """A variable's selected values; `all` when "All" is selected."""

    variable: Variable
    values: tuple[str, ...]
    all: bool = False


# Grafana's templateSrv variable syntax: $name, [[name:format]], ${name}, ${name:format}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format_sql(choice: VariableChoice, fmt: str | None) -> str:
    var = choice.variable
    if choice.all and var.all_value is not None:
        return var.all_value
    values = list(choice.values)
    if fmt in (None, "sqlstring"):
        if len(values) == 1 and not (var.multi or var.include_all) and fmt is None:
            return values[0].replace("'", "''")
        return ",".join(_sql_literal(v) for v in values)
    if fmt == "raw" or fmt == "csv":
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    raise DashboardError(f"variable format {fmt!r} of ${var.name} is not supported by the checker")


def _format_prometheus(choice: VariableChoice, fmt: str | None) -> str:
    var = choice.variable
    if choice.all and var.all_value is not None:
        return var.all_value
    values = list(choice.values)
    if fmt in (None, "regex"):
        if len(values) == 1 and not (var.multi or var.include_all) and fmt is None:
            return values[0]
        escaped = [re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt in ("raw", "csv"):
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    raise DashboardError(f"variable format {fmt!r} of ${var.name} is not supported by the checker")


def _replace_variables(text: str, choices: Mapping[str, VariableChoice], builtins: Mapping[str, str],
                       formatter: Any) -> str:
    def substitute(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        if name in choices:
            return formatter(choices[name], fmt)
        return match.group(0)  # a macro ($__timeFilter) or unknown: left for the next step

    return _VARIABLE.sub(substitute, text)


def _global_variables(window: QueryWindow) -> dict[str, str]:
    range_s = int(window.range.total_seconds())
    return {
        "__interval": format_interval(window.interval),
        "__interval_ms": str(int(window.interval.total_seconds() * 1000)),
        "__range": f"{range_s}s",
        "__range_s": str(range_s),
        "__range_ms": str(range_s * 1000),
        "__from": str(int(window.start.timestamp() * 1000)),
        "__to": str(int(window.end.timestamp() * 1000)),
    }


# --- SQL -------------------------------------------------------------------------------------------
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")


def _sql_macro(name: str, args: list[str], window: QueryWindow, timescaledb: bool, followed_by_comma: bool) -> str:
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)

    def column() -> str:
        if not args or not args[0]:
            raise DashboardError(f"macro ${name} needs a column argument")
        return args[0]

    if name == "__timeGroup" and followed_by_comma:
        name = "__timeGroupAlias"  # Grafana's pre-5.3 compatibility: `$__timeGroup(t, 1h),` adds the alias
    if name == "__time":
        return f'{column()} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {column()}) as "time"'
    if name == "__timeFilter":
        return f"{column()} BETWEEN '{_rfc3339(start)}' AND '{_rfc3339(end)}'"
    if name == "__timeFrom":
        return f"'{_rfc3339(start)}'"
    if name == "__timeTo":
        return f"'{_rfc3339(end)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise DashboardError(f"macro ${name} needs a time column and an interval")
        seconds = parse_duration(args[1]).total_seconds()
        if timescaledb:
            expr = f"time_bucket('{seconds:.3f}s',{args[0]})"
        else:
            expr = f"floor(extract(epoch from {args[0]})/{seconds:g})*{seconds:g}"
        return expr + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        col = column()
        return f"{col} >= {int(start.timestamp())} AND {col} <= {int(end.timestamp())}"
    if name == "__unixEpochFrom":
        return str(int(start.timestamp()))
    if name == "__unixEpochTo":
        return str(int(end.timestamp()))
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise DashboardError(f"macro ${name} needs a time column and an interval")
        seconds = parse_duration(args[1]).total_seconds()
        expr = f"floor(({args[0]})/{seconds:g})*{seconds:g}"
        return expr + (' AS "time"' if name == "__unixEpochGroupAlias" else "")
    raise DashboardError(f"unknown macro ${name}")


def expand_sql(sql: str, window: QueryWindow, choices: Mapping[str, VariableChoice] = {},  # noqa: B006
               timescaledb: bool = True) -> str:
    """The SQL Grafana sends to PostgreSQL for this window and these variable choices."""
    text = _replace_variables(sql, choices, _global_variables(window), _format_sql)

    def macro(match: re.Match) -> str:
        args = [a.strip() for a in match.group(2).split(",")]
        after = text[match.end():match.end() + 1]
        return _sql_macro(match.group(1), args, window, timescaledb, followed_by_comma=after == ",")

    expanded = _MACRO.sub(macro, text)
    leftover = re.search(r"\$\{?\w+|\[\[\w+", expanded)
    if leftover:
        raise DashboardError(f"{leftover.group(0)} is neither a dashboard variable nor a Grafana macro")
    return expanded


# --- PromQL ------------------------------------------------------------------------------------------
def rate_interval(interval: timedelta, scrape_interval: timedelta) -> timedelta:
    """$__rate_interval: max($__interval + scrape interval, 4 x scrape interval)."""
    return max(interval + scrape_interval, 4 * scrape_interval)


def expand_promql(expr: str, window: QueryWindow, choices: Mapping[str, VariableChoice] = {},  # noqa: B006
                  scrape_interval: timedelta = timedelta(seconds=15)) -> str:
    builtins = _global_variables(window)
    builtins["__rate_interval"] = format_interval(rate_interval(window.interval, scrape_interval))
    expanded = _replace_variables(expr, choices, builtins, _format_prometheus)
    leftover = re.search(r"\$\{?\w+|\[\[\w+", expanded)
    if leftover:
        raise DashboardError(f"{leftover.group(0)} is not a dashboard variable or a Grafana global variable")
    return expanded


# --- Running the queries -----------------------------------------------------------------------------
@dataclass
class PanelResult:
    """The outcome of one query of one panel for one variable case."""

    dashboard: str
    panel: str
    panel_type: str
    ref_id: str
    case: str  # "as opened", "All", or "variable $x"
    kind: str  # "sql" | "promql" | "variable" | "annotation"
    query: str = ""
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        state = "ok" if self.ok else f"FAILED: {self.problem}"
        return f"{self.dashboard} / {self.panel} [{self.ref_id}, {self.case}] {self.kind}: {state}"


class _Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str, params: Mapping[str, str]) -> Any:
        full = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(full, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise DashboardError(f"Prometheus answered {exc.code}: {detail}") from exc
        except OSError as exc:
            raise DashboardError(f"Prometheus at {self.url} (PROMETHEUS_URL) did not answer: {exc}") from exc
        if body.get("status") != "success":
            raise DashboardError(f"Prometheus refused the query: {body.get('error')}")
        return body["data"]

    def series(self, expr: str, window: QueryWindow, instant: bool) -> list[dict]:
        if instant:
            return self.get("/api/v1/query", {"query": expr, "time": f"{window.end.timestamp():.3f}"})["result"]
        # Grafana's step: the interval, but at most 11,000 points per series (Prometheus' limit).
        step = max(window.interval.total_seconds(), math.ceil(window.range.total_seconds() / 11000), 1)
        params = {"query": expr, "start": f"{window.start.timestamp():.3f}", "end": f"{window.end.timestamp():.3f}",
                  "step": f"{step:g}"}
        return self.get("/api/v1/query_range", params)["result"]

    def label_values(self, label: str, metric: str | None) -> list[str]:
        params = {"match[]": metric} if metric else {}
        return self.get(f"/api/v1/label/{label}/values", params)


def reader_url(settings: Settings) -> str:
    """DATABASE_URL with the read-only role Grafana uses (pantau_reader, DATABASE_READER_PASSWORD)."""
    parts = urllib.parse.urlsplit(settings.database_url)
    host, port = settings.database_address
    password = urllib.parse.quote(settings.database_reader_password, safe="")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{READER_ROLE}:{password}@{host}:{port}"))


class _Database:
    def __init__(self, settings: Settings) -> None:
        import psycopg

        try:
            # Grafana's connection: the read-only role, the server's time zone (UTC in the image).
            self.conn = psycopg.connect(reader_url(settings), autocommit=True, connect_timeout=10,
                                        options="-c TimeZone=UTC -c statement_timeout=30000")
        except psycopg.OperationalError as exc:
            raise DashboardError(
                f"cannot connect as {READER_ROLE} (the role Grafana uses); is the database migrated and "
                f"DATABASE_READER_PASSWORD set by `pantau migrate`? {str(exc).strip().splitlines()[-1]}"
            ) from exc

    def run(self, sql: str) -> tuple[list[tuple[str, str]], list[tuple]]:
        """(column name, type name) pairs and the rows."""
        import psycopg

        try:
            with self.conn.cursor() as cur:
                cur.execute(sql.encode())
                if cur.description is None:
                    return [], []
                types = self.conn.adapters.types
                columns = [(c.name, getattr(types.get(c.type_code), "name", str(c.type_code))) for c in cur.description]
                return columns, cur.fetchall()
        except psycopg.Error as exc:
            raise DashboardError(f"PostgreSQL: {str(exc).strip()}") from exc

    def close(self) -> None:
        self.conn.close()


def _check_sql_result(panel_type: str, fmt: str, columns: list[tuple[str, str]], rows: list[tuple],
                      required_fields: Sequence[str]) -> str | None:
    """Why a result would show nothing or the wrong thing in this panel type; None when it is fine."""
    if not rows:
        return "the query returned no rows"
    names = [n for n, _ in columns]
    types = dict(columns)
    numeric = [n for n, t in columns if t in _NUMERIC_TYPES and n != "time"]
    missing = [f for f in required_fields if f not in names]
    if missing:
        return f"the panel's field overrides name columns the query does not return: {missing} (columns: {names})"
    if fmt == "time_series":
        if "time" not in types:
            return f"a time series query needs a column named time; got {names}"
        if types["time"] not in _TIME_TYPES | _NUMERIC_TYPES:
            return f"the time column is {types['time']}, not a timestamp"
        if not numeric:
            return f"a time series query needs at least one numeric value column; got {columns}"
    elif panel_type in ("stat", "gauge", "bargauge", "piechart", "barchart") and not numeric:
        return f"a {panel_type} panel needs a numeric column; got {columns}"
    if numeric:
        index = [names.index(n) for n in numeric]
        if all(row[i] is None for row in rows for i in index):
            return f"every value in the numeric columns {numeric} is NULL"
    return None


def _check_annotation_result(columns: list[tuple[str, str]], rows: list[tuple]) -> str | None:
    if not rows:
        return "the annotation query returned no rows"
    names = {n for n, _ in columns}
    needed = {"time", "text"} - names
    if needed:
        return f"an annotation query needs the columns time and text (optional timeend, tags); missing {sorted(needed)}"
    return None


def _legend_labels(legend_format: str) -> set[str]:
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend_format))


class DashboardChecker:
    """Runs a dashboard's queries against real data sources."""

    def __init__(self, database_settings: Settings | None, prometheus_url: str | None,
                 datasources: Mapping[str, Datasource] | None = None, max_data_points: int = 1000) -> None:
        self.datasources = datasources if datasources is not None else load_datasources()
        self.database_settings = database_settings
        self.prometheus = _Prometheus(prometheus_url) if prometheus_url else None
        self.max_data_points = max_data_points
        self._db: _Database | None = None

    def _database(self) -> _Database:
        if self.database_settings is None:
            raise DashboardError("this dashboard has SQL queries but no database settings were given")
        if self._db is None:
            self._db = _Database(self.database_settings)
        return self._db

    def close(self) -> None:
        if self._db:
            self._db.close()

    # --- per data source ----------------------------------------------------------------------
    def _kind(self, uid: str) -> str:
        ds = self.datasources.get(uid)
        if ds is None:
            raise DashboardError(f"data source uid {uid!r} is not provisioned in {DATASOURCES_DIR}")
        if ds.type == POSTGRES_TYPE:
            return "sql"
        if ds.type == PROMETHEUS_TYPE:
            return "promql"
        raise DashboardError(f"data source {uid!r} has type {ds.type!r}, which the checker cannot run")

    def _min_interval(self, uid: str, panel_interval: str | None) -> timedelta:
        if panel_interval:
            return parse_duration(panel_interval)
        ds = self.datasources[uid]
        # SQL data sources default to 1m (SqlDatasource.interval), Prometheus to its scrape interval.
        default = "1m" if ds.type == POSTGRES_TYPE else "15s"
        return parse_duration(ds.json_data.get("timeInterval", default))

    def _window(self, start: datetime, end: datetime, uid: str, panel: Mapping[str, Any] | None) -> QueryWindow:
        panel = panel or {}
        points = int(panel.get("maxDataPoints") or self.max_data_points)
        interval = grafana_interval(start, end, points, self._min_interval(uid, panel.get("interval")))
        return QueryWindow(start, end, interval)

    def expand(self, target: Target, window: QueryWindow, choices: Mapping[str, VariableChoice]) -> str:
        if self._kind(target.datasource_uid) == "sql":
            timescaledb = bool(self.datasources[target.datasource_uid].json_data.get("timescaledb"))
            return expand_sql(target.query, window, choices, timescaledb=timescaledb)
        scrape = parse_duration(self.datasources[target.datasource_uid].json_data.get("timeInterval", "15s"))
        return expand_promql(target.query, window, choices, scrape_interval=scrape)

    # --- variables --------------------------------------------------------------------------------
    def variable_values(self, variable: Variable, start: datetime, end: datetime,
                        choices: Mapping[str, VariableChoice]) -> list[str]:
        """The options Grafana would offer, in order (its own query run against its data source)."""
        if variable.type == "custom":
            return [v.strip() for v in variable.query.split(",") if v.strip()]
        if variable.type == "constant":
            return [variable.query]
        if variable.type != "query" or not variable.datasource_uid:
            raise DashboardError(f"variable ${variable.name} of type {variable.type} is not supported by the checker")
        window = self._window(start, end, variable.datasource_uid, None)
        if self._kind(variable.datasource_uid) == "sql":
            sql = expand_sql(variable.query, window, choices,
                             timescaledb=bool(self.datasources[variable.datasource_uid].json_data.get("timescaledb")))
            columns, rows = self._database().run(sql)
            names = [n for n, _ in columns]
            if "__text" in names and "__value" in names:
                index = names.index("__value")
                values = [str(row[index]) for row in rows]
            else:  # every value of every column (Grafana's ResponseParser)
                values = [str(v) for row in rows for v in row if v is not None]
            return list(dict.fromkeys(values))
        match = re.fullmatch(r"\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*", variable.query)
        if not match or self.prometheus is None:
            raise DashboardError(f"variable ${variable.name}: only label_values(...) is supported for Prometheus")
        metric = expand_promql(match[1], window, choices) if match[1] else None
        return self.prometheus.label_values(match[2], metric)

    def variable_cases(self, dashboard: Dashboard, start: datetime, end: datetime,
                       results: list[PanelResult]) -> list[tuple[str, dict[str, VariableChoice]]] | None:
        """The selections to run every query with; None (with a failed result) when a variable has no
        value. "As opened" is what Grafana shows first: each variable's saved selection while its
        options still hold it, else the first option; "All" selects all of every variable that
        offers it (skipped when that is what the dashboard opens on). A narrower selection may
        rightly show nothing (a market without rice), so it is not a case."""
        opened: dict[str, VariableChoice] = {}
        everything: dict[str, VariableChoice] = {}
        for variable in dashboard.variables:
            try:
                values = self.variable_values(variable, start, end, opened)
                problem = None if values else "the variable's query returned no values"
            except DashboardError as exc:
                values, problem = [], str(exc)
            results.append(PanelResult(dashboard.title, f"variable ${variable.name}", "variable", "-",
                                       "options", "variable", variable.query, rows=len(values), problem=problem))
            if problem:
                return None
            first = VariableChoice(variable, (values[0],))
            every = VariableChoice(variable, tuple(values), all=True) if variable.include_all else first
            if variable.saved == ("$__all",):
                opened[variable.name] = every
            elif variable.saved and set(variable.saved) <= set(values):
                opened[variable.name] = VariableChoice(variable, variable.saved)
            else:
                opened[variable.name] = first
            everything[variable.name] = every if variable.include_all else opened[variable.name]
        return [("as opened", opened)] + ([("All", everything)] if everything != opened else [])

    # --- the dashboard ----------------------------------------------------------------------------
    def check(self, dashboard: Dashboard, start: datetime, end: datetime) -> list[PanelResult]:
        results: list[PanelResult] = []
        cases = self.variable_cases(dashboard, start, end, results)
        if cases is None:
            return results
        for panel in dashboard.panels:
            if not panel.targets:
                results.append(PanelResult(dashboard.title, panel.title, panel.type, "-", "-", "-",
                                           problem="the panel has no query"))
            for target in panel.targets:
                for case, choices in cases:
                    results.append(self._run(dashboard, panel.title, panel.type, target, case, choices, start, end,
                                             panel.raw, panel.fields_named_in_overrides))
        for annotation in dashboard.annotations:
            for case, choices in cases:
                results.append(self._run(dashboard, f"annotation {annotation.name}", "annotation", annotation.target,
                                         case, choices, start, end, None, ()))
        return results

    def _run(self, dashboard: Dashboard, title: str, panel_type: str, target: Target, case: str,
             choices: Mapping[str, VariableChoice], start: datetime, end: datetime,
             panel: Mapping[str, Any] | None, required_fields: Sequence[str]) -> PanelResult:
        result = PanelResult(dashboard.title, title, panel_type, target.ref_id, case, "?", target.query)
        try:
            kind = self._kind(target.datasource_uid)
            result.kind = "annotation" if panel_type == "annotation" else kind
            window = self._window(start, end, target.datasource_uid, panel)
            result.query = self.expand(target, window, choices)
            if kind == "sql":
                columns, rows = self._database().run(result.query)
                result.columns, result.rows = [n for n, _ in columns], len(rows)
                if panel_type == "annotation":
                    result.problem = _check_annotation_result(columns, rows)
                else:
                    result.problem = _check_sql_result(panel_type, target.format, columns, rows, required_fields)
            else:
                if self.prometheus is None:
                    raise DashboardError("this dashboard has PromQL queries but no Prometheus URL was given")
                series = self.prometheus.series(result.query, window, target.instant)
                result.rows = len(series)
                labels = set().union(*(s["metric"] for s in series)) if series else set()
                result.columns = sorted(labels)
                if not series:
                    result.problem = "the query returned no series"
                elif missing := _legend_labels(target.legend_format) - labels:
                    result.problem = f"the legend uses labels the series do not have: {sorted(missing)}"
        except DashboardError as exc:
            result.problem = str(exc)
        return result


def check_dashboard(path: Path | str, database_settings: Settings | None, prometheus_url: str | None, *,
                    start: datetime | None = None, end: datetime | None = None,
                    now: datetime | None = None) -> list[PanelResult]:
    """Run every query of the dashboard at `path` against TimescaleDB (as pantau_reader, with
    DATABASE_URL's server and DATABASE_READER_PASSWORD) and Prometheus; one result per query and
    variable case. The window is the dashboard's own time range relative to `now` unless
    `start`/`end` are given (e.g. the simulated period of an end-to-end run)."""
    dashboard = load_dashboard(path)
    now = now or datetime.now(UTC)
    start = start or parse_grafana_time(dashboard.time_from, now)
    end = end or parse_grafana_time(dashboard.time_to, now)
    checker = DashboardChecker(database_settings, prometheus_url)
    try:
        return checker.check(dashboard, start, end)
    finally:
        checker.close()
