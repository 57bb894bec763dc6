"""A migrated database holding a month of realistic events, read by the dashboards as Grafana reads it
(role pantau_reader with DATABASE_READER_PASSWORD)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pantau.cli import _migrate
from pantau.settings import Settings
from tests.integration.dashboards.realistic_data import realistic_events, store_events


@pytest.fixture(scope="module")
def data_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def filled_database(postgres_server, data_now) -> Settings:
    """Fresh database, migrated by `pantau migrate`'s own code (which also sets pantau_reader's password),
    filled through the sink's batch writer."""
    from tests.conftest import _database

    databases = _database(postgres_server, timescaledb=True)
    settings = next(databases)
    _migrate(settings)
    written = store_events(settings, realistic_events(data_now))
    assert all(written.get(t) for t in ("price_observations", "harvests", "shipment_events", "alert_events",
                                        "dead_letters")), written
    yield settings
    databases.close()
