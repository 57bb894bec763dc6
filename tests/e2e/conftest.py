"""The whole system as `make run` starts it (`pantau stack run`), on ports of its own and with its
state in a directory of its own, so it runs beside a developer's `make run` and the test stack."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pantau.settings import REPO_ROOT, Settings

E2E_ENV = {
    "LOCAL_KAFKA": "true",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:29092",
    "LOCAL_POSTGRES": "true",
    "DATABASE_URL": "postgresql://pantau:pantau-dev@127.0.0.1:55434/pantau",
    "LOCAL_PROMETHEUS": "true",
    "PROMETHEUS_URL": "http://127.0.0.1:29090",
    "SIMULATOR_PORT": "29101",
    "PROCESSOR_PORT": "29102",
    "SINK_PORT": "29103",
    "DISPATCHER_PORT": "29104",
    "GATEWAY_PORT": "28001",
    "API_PORT": "28000",
    "ENVIRONMENT": "development",
}


@dataclass
class RunningStack:
    process: subprocess.Popen
    output: Path
    env: dict[str, str]
    settings: Settings
    started_at: float
    output_from: int = 0  # where this run's output starts (a restart appends to the same file)

    @property
    def local_dir(self) -> Path:
        return self.settings.local_dir

    def python(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run `python ARGS` with the stack's environment (as an operator's shell would have it)."""
        return subprocess.run(
            [sys.executable, *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
        )

    def pantau(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.python("-m", "pantau.cli", *args, timeout=timeout)

    def log(self) -> str:
        """This run's output."""
        return self.output.read_bytes()[self.output_from:].decode(errors="replace")

    def wait_for_line(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            if self.process.poll() is not None:
                pytest.fail(f"`pantau stack run` exited ({self.process.returncode}):\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"`pantau stack run` did not print {text!r} in {timeout_s:.0f}s:\n{self.log()[-4000:]}")
            time.sleep(0.5)

    def stop(self, timeout_s: float = 120) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_stack(local_dir: Path, extra_env: dict[str, str] | None = None) -> RunningStack:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")},
        **E2E_ENV,
        "LOCAL_DIR": str(local_dir),
        "PROCESSOR_DATA_DIR": str(local_dir / "processor"),
        **(extra_env or {}),
    }
    settings = Settings(**{k.lower(): v for k, v in E2E_ENV.items()}, local_dir=local_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    output = local_dir / "stack-run.out"
    output_from = output.stat().st_size if output.exists() else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "pantau.cli", "stack", "run"],
        env=env, stdout=output.open("ab"), stderr=subprocess.STDOUT, cwd=REPO_ROOT,
    )
    return RunningStack(process, output, env, settings, time.monotonic(), output_from)


@pytest.fixture(scope="session")
def e2e_dir() -> Iterator[Path]:
    # Under the repository, not /tmp/pytest-*: PostgreSQL runs as the postgres user and must reach it.
    directory = REPO_ROOT / ".local" / f"e2e-{uuid.uuid4().hex[:8]}"
    yield directory
    if os.environ.get("PANTAU_TEST_KEEP_STACK") != "1":
        shutil.rmtree(directory, ignore_errors=True)
