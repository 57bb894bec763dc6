"""Fixtures for the dispatcher tests: the API fixtures (keys and subscriptions are made through the
API, as a distributor would), webhook receivers, and the dispatcher on a fresh topic and group."""

# Fixtures shared with the API tests are imported (pytest registers them); F811 would flag every
# fixture parameter named like one.
# ruff: noqa: F811
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pantau.settings import Settings
from tests.integration.api.conftest import alert_topic, api, api_settings, new_key, start_api  # noqa: F401
from tests.integration.api.support import DispatcherRunner, WebhookReceiver, create_topic

# Short steps so that a test sees several retries within seconds; the schedule's shape is the same.
FAST_RETRIES = {
    "dispatcher_backoff_initial_seconds": 0.2,
    "dispatcher_backoff_max_seconds": 1.0,
    "dispatcher_max_attempts": 1000,
}


@pytest.fixture
def deadletter_topic(api_settings: Settings, fresh_topic_name: Callable[[], str]) -> str:
    return create_topic(api_settings, fresh_topic_name())


@pytest.fixture
def start_dispatcher(
    api_settings: Settings, alert_topic: str, deadletter_topic: str
) -> Iterator[Callable[..., DispatcherRunner]]:
    runners: list[DispatcherRunner] = []

    def start(**overrides: object) -> DispatcherRunner:
        settings = api_settings.model_copy(update={**FAST_RETRIES, **overrides})
        runner = DispatcherRunner(settings, alert_topic, deadletter_topic).start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.stop()


@pytest.fixture
def receiver() -> Iterator[Callable[[], WebhookReceiver]]:
    started: list[WebhookReceiver] = []

    def make() -> WebhookReceiver:
        made = WebhookReceiver().start()
        started.append(made)
        return made

    yield make
    for made in started:
        made.stop()
