"""Which rollup the sink keeps and how old data goes depend on the database: the decisions."""

from __future__ import annotations

import pytest

from pantau.storage.retention import RetentionMode, retention_mode
from pantau.storage.writer import PRICE_ROLLUP_ALL_STAGED, PRICE_ROLLUP_INSERTED_NOW, statements


@pytest.mark.parametrize(
    ("edition", "mode"),
    [("timescale", RetentionMode.POLICY), ("apache", RetentionMode.DROP_CHUNKS), (None, RetentionMode.DELETE)],
)
def test_retention_follows_the_timescaledb_license(edition, mode):
    assert retention_mode(edition) is mode


def test_sink_updates_rollup_tables_only_where_there_are_no_continuous_aggregates():
    with_tables = statements(keeps_rollups=True)
    with_caggs = statements(keeps_rollups=False)
    assert "arrivals_daily_rollup" in with_tables["shipment_events"]
    assert not any("_rollup" in statement for statement in with_caggs.values())


def test_price_rollup_counts_only_rows_new_in_this_transaction_when_some_were_stored_before():
    assert "pg_current_xact_id()" in PRICE_ROLLUP_INSERTED_NOW
    assert "FROM _stage_price_observations\n" in PRICE_ROLLUP_ALL_STAGED


def test_current_state_is_updated_in_every_mode():
    for keeps_rollups in (True, False):
        chosen = statements(keeps_rollups)
        assert "INSERT INTO shipment_state" in chosen["shipment_events"]
        assert "INSERT INTO alert_state" in chosen["alert_events"]
