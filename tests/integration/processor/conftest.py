from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.processor.workers import ProcessorEnv


@pytest.fixture
def processor_env(kafka_settings, tmp_path: Path) -> Iterator[ProcessorEnv]:
    """Fresh prefixed copies of the five contract topics and a fresh consumer group; every worker
    started through it is stopped at the end (its log is in tmp_path)."""
    env = ProcessorEnv.fresh(kafka_settings, tmp_path)
    yield env
    env.stop_all()
