"""The sink's own metrics (the shared ones are in pantau.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from pantau.metrics import LATENCY_BUCKETS

ROWS_WRITTEN = Counter(
    "pantau_sink_rows_written_total", "Rows inserted, by table (replayed events insert nothing).", ["table"]
)
BATCH_DURATION = Histogram(
    "pantau_sink_batch_duration_seconds",
    "Time to store one batch: decode, database transaction(s), dead letters, offset commit.",
    buckets=LATENCY_BUCKETS,
)
BATCH_ROWS = Histogram(
    "pantau_sink_batch_rows",
    "Records per batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000),
)
WRITE_ERRORS = Counter(
    "pantau_sink_write_errors_total",
    "Database errors: rows refused, by table and error class; table=\"batch\" for connection errors.",
    ["table", "error"],
)
DATABASE_UP = Gauge("pantau_sink_database_up", "1 while the database accepts the sink's writes, 0 while it does not.")
