"""The metric objects the code defines under a documented name have the documented type and labels,
so the dashboards' and alerts' label names (job, topic, table, market, ...) match what is exported."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

import pantau.http  # noqa: F401 (registers the HTTP metrics)
import pantau.metrics  # noqa: F401 (registers the shared metrics)
from pantau.dashboards import DOCUMENTED_METRICS
from tests.integration.dashboards.metrics_replay import import_service_metrics

import_service_metrics()


def defined_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name (counters with _total) -> (type, label names) of every pantau_ collector registered."""
    found = {}
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 (no public way to list label names)
        name = getattr(collector, "_name", "")
        if name.startswith("pantau_"):
            kind = collector._type  # noqa: SLF001
            found[f"{name}_total" if kind == "counter" else name] = (kind, tuple(collector._labelnames))  # noqa: SLF001
    return found


DEFINED = defined_metrics()


def test_the_shared_and_service_metrics_are_found():
    assert {"pantau_events_consumed_total", "pantau_sink_rows_written_total"} <= set(DEFINED)


@pytest.mark.parametrize("name", sorted(set(DEFINED) & set(DOCUMENTED_METRICS)))
def test_a_documented_metric_has_its_documented_type_and_labels(name):
    assert DEFINED[name] == DOCUMENTED_METRICS[name]
