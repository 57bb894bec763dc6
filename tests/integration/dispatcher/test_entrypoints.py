"""`python -m services.api` and `python -m services.dispatcher` as `make run` starts them: configured
from the environment only, serving /healthz and /metrics on their ports, delivering a real alert from
pangan.alert.v1, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from pantau.contracts import ALERT_TOPIC, topic_specs
from pantau.kafka import ensure_topics
from pantau.settings import REPO_ROOT, Settings
from pantau.subscriptions.signing import verify
from tests.integration.api.conftest import ADMIN_TOKEN
from tests.integration.api.support import AlertStory, WebhookReceiver, eventually, free_port, produce


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_FORMAT": "json",
        **extra,
    }


@pytest.fixture
def run_service(tmp_path) -> Iterator:
    started: list[subprocess.Popen] = []

    def start(module: str, env: dict[str, str]) -> subprocess.Popen:
        log = (tmp_path / f"{module}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", module], env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        process.log_path = tmp_path / f"{module}.log"  # type: ignore[attr-defined]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def healthy(url: str) -> None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError as exc:
        raise AssertionError(f"{url}: {exc}") from exc
    assert response.status_code == 200, response.text


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


def test_the_services_start_from_the_environment_deliver_a_live_alert_and_stop_on_sigterm(api_settings, run_service):
    ensure_topics(api_settings, topic_specs())  # what `pantau bootstrap` does
    api_port, dispatcher_port = free_port(), free_port()
    env = environment(api_settings, API_PORT=str(api_port), DISPATCHER_PORT=str(dispatcher_port))
    api = run_service("services.api", env)
    dispatcher = run_service("services.dispatcher", env)
    eventually(lambda: healthy(f"http://127.0.0.1:{api_port}/healthz"), timeout_s=60)
    eventually(lambda: healthy(f"http://127.0.0.1:{dispatcher_port}/healthz"), timeout_s=60)

    issued = subprocess.run(
        [sys.executable, "-m", "services.api", "create-key", "--name", "PT Nanas Segar"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = issued.stdout.strip()
    assert key.startswith("ppk_") and "shown once" in issued.stderr
    receiver = WebhookReceiver().start()
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"}
        ) as api_client:
            subscription = api_client.post(
                "/v1/subscriptions",
                json={"webhook_url": receiver.url, "commodities": ["nanas"], "places": ["pikj"]},
            ).json()
        story = AlertStory(commodity="nanas", place=("market", "pikj", "Pasar Induk Kramat Jati"))
        alert = story.opened("alert")
        produce(api_settings, ALERT_TOPIC, [alert])

        def delivered() -> None:
            assert alert.event_id in [e["event_id"] for e in receiver.events()]

        eventually(delivered, timeout_s=60)
        got = next(r for r in receiver.received if r.event["event_id"] == alert.event_id)
        signature = {k.lower(): v for k, v in got.headers.items()}["x-pantau-signature"]
        verify(subscription["signing_secret"], signature, got.body)
        metrics = httpx.get(f"http://127.0.0.1:{dispatcher_port}/metrics").text
        assert 'pantau_webhook_deliveries_total{outcome="delivered"}' in metrics
        assert "pantau_webhook_pending_deliveries" in metrics
    finally:
        receiver.stop()
    assert stop(dispatcher) == 0, dispatcher.log_path.read_text()[-3000:]
    # uvicorn finishes its shutdown (lifespan: stream consumer and pool closed), then re-raises the
    # signal so that process managers see how it ended.
    assert stop(api) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in api.log_path.read_text()
