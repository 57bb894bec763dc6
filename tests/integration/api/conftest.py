"""Fixtures for the API tests: a migrated fresh database, a fresh alert topic, the API on uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pantau.db import migrate
from pantau.settings import Settings
from tests.conftest import make_settings
from tests.integration.api.support import ApiServer, create_topic

ADMIN_TOKEN = "test-admin-token"


@pytest.fixture
def api_settings(database: Settings, kafka_broker: str) -> Settings:
    """A migrated fresh database and the test broker."""
    migrate(database)
    return make_settings(database_url=database.database_url, admin_token=ADMIN_TOKEN, api_rate_limit_per_minute=1000)


@pytest.fixture
def alert_topic(kafka_settings: Settings, fresh_topic_name: Callable[[], str]) -> str:
    return create_topic(kafka_settings, fresh_topic_name())


@pytest.fixture
def start_api(alert_topic: str) -> Iterator[Callable[..., ApiServer]]:
    servers: list[ApiServer] = []

    def start(settings: Settings) -> ApiServer:
        server = ApiServer(settings, alert_topic).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def api(start_api: Callable[..., ApiServer], api_settings: Settings) -> ApiServer:
    return start_api(api_settings)


@pytest.fixture
def new_key(api: ApiServer) -> Callable[[str], str]:
    """Issue an API key through the admin route; returns the key."""

    def issue(name: str) -> str:
        with api.client(ADMIN_TOKEN) as admin:
            response = admin.post("/v1/admin/keys", json={"name": name})
        assert response.status_code == 201, response.text
        return response.json()["api_key"]

    return issue


@pytest.fixture
def seeded(api_settings: Settings) -> dict:
    """The known week of tests/integration/api/data.py, written through the sink's batch writer."""
    from tests.integration.api.data import seed

    return seed(api_settings)
