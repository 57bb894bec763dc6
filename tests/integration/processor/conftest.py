from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.integration.processor.workers import ProcessorEnv


@pytest.fixture
def processor_env(kafka_settings, tmp_path: Path) -> Iterator[ProcessorEnv]:
    """Fresh prefixed copies of the five contract topics and a fresh consumer group; every worker
    started through it is stopped at the end (its log is in tmp_path)."""
    env = ProcessorEnv.fresh(kafka_settings, tmp_path)
    yield env
    env.stop_all()


@pytest.fixture(scope="module")
def shared_processor(kafka_broker, tmp_path_factory) -> Iterator[ProcessorEnv]:
    """One running worker for a module whose tests use keys of their own (saves a start per test)."""
    env = ProcessorEnv.fresh(make_settings(kafka_bootstrap_servers=kafka_broker), tmp_path_factory.mktemp("processor"))
    env.worker("shared").start().wait_assigned()
    yield env
    env.stop_all()
