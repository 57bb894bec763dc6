"""`make run` as a newcomer sees it: one command brings up Kafka, TimescaleDB, Prometheus and every
service; data flows end to end; officers' dashboards answer; a distributor's subscription gets its
alerts; Ctrl-C leaves nothing behind and a second run finds the first one's topics and data.

The stack runs with SIMULATOR_SPEED=3600 so the demo scenarios (scenarios/demo.yaml) play out in
minutes. Tests run in file order and share the one stack; the last one stops and restarts it."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import psycopg
import pytest
import yaml
from kafka import KafkaConsumer

from pantau.dashboards import check_dashboard
from pantau.devstack import existing_services
from pantau.settings import REPO_ROOT
from pantau.subscriptions.signing import verify as verify_signature
from tests.e2e.conftest import RunningStack, start_stack
from tests.e2e.webhooks import AlertStreamListener, StreamedEvent, WebhookReceiver

SPEED = "3600"
SCHEMAS = REPO_ROOT / "contracts" / "schemas"


def eventually(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 1.0) -> Any:
    """Call `check` until it returns a truthy value; fail naming `what` with the last error."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (AssertionError, OSError, psycopg.Error, httpx.HTTPError) as exc:
            last = exc
        time.sleep(every_s)
    pytest.fail(f"{what} did not happen within {timeout_s:.0f}s (last: {last!r})")


def query(stack: RunningStack, sql: str, *params: Any) -> list[tuple]:
    with psycopg.connect(stack.settings.database_url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def prometheus(stack: RunningStack, promql: str) -> list[dict]:
    url = f"{stack.settings.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]


@pytest.fixture(scope="module")
def stack(e2e_dir: Path) -> Iterator[RunningStack]:
    running = start_stack(e2e_dir, {"SIMULATOR_SPEED": SPEED})
    try:
        running.wait_for_line("Pantau Pangan is running", timeout_s=240)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings.api_port}", timeout=10) as client:
        eventually(lambda: client.get("/healthz").status_code == 200, 60, "the API answering /healthz")
        yield client


@pytest.fixture(scope="module")
def subscription(stack: RunningStack, api: httpx.Client) -> Iterator[dict]:
    """A distributor subscribed to price spikes, created as early as possible: only alerts produced
    after a subscription exists are delivered to it."""
    created = stack.python("-m", "services.api", "create-key", "--name", "PT Beras Uji E2E")
    assert created.returncode == 0, created.stderr
    api_key = next(word for word in created.stdout.split() if word.startswith("ppk_"))
    with WebhookReceiver() as receiver:
        response = api.post(
            "/v1/subscriptions",
            headers={"Authorization": f"Bearer {api_key}"},
            json={"webhook_url": receiver.url, "alert_types": ["price_spike"], "min_severity": "watch"},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        stream_url = f"http://127.0.0.1:{stack.settings.api_port}/v1/alerts/stream"
        with AlertStreamListener(stream_url, api_key) as stream:
            yield {**body, "api_key": api_key, "receiver": receiver, "stream": stream,
                   "secret": body["signing_secret"], "created_at": datetime.fromisoformat(body["created_at"])}


@pytest.fixture(scope="module")
def settled(stack: RunningStack) -> None:
    """The simulator has caught up with the wall clock (every scenario of the demo has played) and
    every consumer has read what it produced. Tests that check for the absence of something wait
    for this; a check made earlier would pass on a simulation that has not got there yet."""
    simulator_log = stack.local_dir / "logs" / "simulator.log"
    eventually(lambda: "caught up with the wall clock" in simulator_log.read_text(errors="replace"), 900,
               "the simulator catching up with the wall clock", every_s=5)
    caught_up_at = time.monotonic()

    def drained() -> bool:
        lag = prometheus(stack, "sum(pantau_consumer_lag_messages)")
        # a scrape after the catch-up (every 15 s) must show every partition read to its end
        return time.monotonic() - caught_up_at > 20 and bool(lag) and float(lag[0]["value"][1]) == 0

    eventually(drained, 300, "every consumer reading to the end of its topics", every_s=5)


def test_rows_appear_in_timescaledb_within_60_seconds_of_start(stack):
    def stored() -> int:
        return query(stack, "SELECT count(*) FROM price_observations")[0][0]

    remaining = 60 - (time.monotonic() - stack.started_at)
    assert remaining > 0, "the stack took more than 60 s to start"
    eventually(stored, remaining, "a price row in TimescaleDB")


def test_subscription_is_created_before_the_alerts(subscription):
    assert subscription["alert_types"] == ["price_spike"]


def test_timescaledb_is_loaded_and_the_time_series_are_hypertables(stack):
    version = query(stack, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    assert version and version[0][0].startswith("2.")
    hypertables = {row[0] for row in query(stack, "SELECT hypertable_name FROM timescaledb_information.hypertables")}
    assert {"price_observations", "harvests", "shipment_events", "alert_events", "dead_letters"} <= hypertables


def test_prometheus_reports_every_service_up(stack):
    expected = {s.name for s in existing_services()} | {"prometheus"}

    def all_up() -> bool:
        up = {series["metric"]["job"]: series["value"][1] for series in prometheus(stack, "up")}
        assert set(up) == expected, f"scraped jobs {sorted(up)} != {sorted(expected)}"
        assert all(value == "1" for value in up.values()), up
        return True

    eventually(all_up, 90, "up == 1 for every service")


def test_status_shows_every_process_running_and_healthy(stack):
    def healthy() -> bool:
        result = stack.pantau("stack", "status")
        assert result.returncode == 0, result.stdout + result.stderr
        lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
        for service in existing_services():
            assert "RUNNING" in lines[service.name] and "healthy" in lines[service.name], lines[service.name]
        for part in ("kafka", "postgres", "prometheus"):
            assert "RUNNING" in lines[part]
        return True

    eventually(healthy, 90, "every process RUNNING and healthy in `pantau stack status`")


def test_all_three_event_streams_reach_the_database(stack):
    def flowing() -> bool:
        counts = query(
            stack,
            "SELECT (SELECT count(*) FROM harvests), (SELECT count(*) FROM shipment_events),"
            " (SELECT count(*) FROM price_observations)",
        )[0]
        assert all(count > 0 for count in counts), counts
        return True

    eventually(flowing, 120, "harvest, shipment and price rows")


def test_a_subscriber_with_only_the_published_contracts_decodes_every_topic(stack):
    """What an outside team would do: read contracts/asyncapi.yaml for topics and schema files and
    validate every message with a generic JSON Schema library, no pantau code."""
    document = yaml.safe_load((REPO_ROOT / "contracts" / "asyncapi.yaml").read_text())
    registry_schemas = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        [(schema["$id"], Resource.from_contents(schema)) for schema in registry_schemas.values()]
    )
    by_event_type = {}
    for schema in registry_schemas.values():
        event_type = schema.get("properties", {}).get("event_type", {}).get("const")
        if event_type:
            by_event_type[event_type] = schema
    topics = [channel["address"] for channel in document["channels"].values()]
    data_topics = [t for t in topics if t.split(".")[1] in ("harvest", "shipment", "price")]
    consumer = KafkaConsumer(
        *data_topics, bootstrap_servers=stack.settings.kafka_bootstrap_servers, group_id=None,
        auto_offset_reset="earliest", consumer_timeout_ms=10_000, isolation_level="read_committed",
    )
    seen: dict[str, int] = {}
    try:
        for message in consumer:
            event = json.loads(message.value)
            schema = by_event_type[event["event_type"]]
            validator = jsonschema.Draft202012Validator(
                schema, registry=registry, format_checker=jsonschema.FormatChecker()
            )
            errors = list(validator.iter_errors(event))
            assert not errors, f"{message.topic} offset {message.offset}: {errors[0].message}"
            seen[message.topic] = seen.get(message.topic, 0) + 1
            if len(seen) == len(data_topics) and min(seen.values()) >= 50:
                break
    finally:
        consumer.close()
    assert set(seen) == set(data_topics), seen


def alerts_on_topic(stack: RunningStack) -> list[dict]:
    rows = query(
        stack,
        "SELECT event_type, alert_type, subject, severity, occurred_at, produced_at, event_id"
        " FROM alert_events ORDER BY produced_at",
    )
    keys = ("event_type", "alert_type", "subject", "severity", "occurred_at", "produced_at", "event_id")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def ground_truth(stack: RunningStack) -> list[dict]:
    path = stack.local_dir / "simulator" / "ground_truth.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_an_injected_price_jump_raises_a_price_spike_alert(stack):
    opened = eventually(lambda: first_opened_for(stack, "price_jump"), 300,
                        "a price_spike alert for the injected price jump", every_s=3)
    assert opened["price_spike"]["severity"] in ("alert", "crisis")


def expected_subjects(stack: RunningStack, kind: str) -> dict[str, str]:
    """alert subject -> alert type, for the ground-truth lines of one scenario kind."""
    return {t["alert_subject"]: t["expected_alert_type"] for t in must_raise(stack, kind)}


def must_raise(stack: RunningStack, kind: str) -> list[dict]:
    """The ground-truth lines of one scenario kind that require an alert."""
    return [t for t in ground_truth(stack) if t["kind"] == kind and t["expected_alert_type"] and t["required"]]


AFTER_THE_END = timedelta(days=2)  # an alert may open this long after its scenario ended (stock runs down)


def explained_by(truth: dict, alert: dict) -> bool:
    """The ground-truth line causes the alert: same subject, opened between onset and end (+ slack)."""
    return truth["alert_subject"] == alert["subject"] and in_window(truth, alert)


def in_window(truth: dict, alert: dict) -> bool:
    onset, end = datetime.fromisoformat(truth["onset"]), datetime.fromisoformat(truth["end"])
    return onset <= alert["occurred_at"] <= end + AFTER_THE_END


def first_opened_for(stack: RunningStack, kind: str) -> dict[str, dict]:
    """expected alert type -> the first alert the scenarios of `kind` explain, once each has one."""
    truth = must_raise(stack, kind)
    assert truth, f"the simulator has not started a {kind} scenario yet"
    opened = [a for a in alerts_on_topic(stack) if a["event_type"] == "AlertOpened"]
    first: dict[str, dict] = {}
    for line in truth:
        hits = [a for a in opened if explained_by(line, a)]
        assert hits, f"no {line['expected_alert_type']} alert for {line['alert_subject']} yet"
        first.setdefault(line["expected_alert_type"], hits[0])
    return first


def test_a_ferry_closure_raises_a_route_disruption_then_a_supply_gap(stack):
    assert set(expected_subjects(stack, "ferry_closure").values()) == {"route_disruption", "supply_gap"}
    opened = eventually(lambda: first_opened_for(stack, "ferry_closure"), 420,
                        "the closure's route disruption and supply gap alerts", every_s=3)
    route, gap = opened["route_disruption"], opened["supply_gap"]
    assert route["occurred_at"] <= gap["occurred_at"], "the disruption is seen before the gap it causes"


def test_every_alert_opened_is_one_the_scenarios_explain(stack, settled):
    """Calm: in the demo run every alert has a cause in the ground truth (an alert it requires or one
    it may raise, such as a small flow running short during a closure); no storm of false alarms."""
    causes = [t for t in ground_truth(stack) if t["expected_alert_type"]]
    unexplained = [(a["subject"], a["occurred_at"].isoformat()) for a in alerts_on_topic(stack)
                   if a["event_type"] == "AlertOpened" and not any(explained_by(t, a) for t in causes)]
    assert not unexplained, f"alerts without a cause in the scenarios: {unexplained}"


def test_the_one_day_glitch_raises_no_alert(stack, settled):
    truth = [t for t in ground_truth(stack) if t["kind"] == "data_glitch"]
    assert truth, "the glitch scenario should have started by now"
    for line in truth:
        assert line["expected_alert_type"] is None
        glitched = [a for a in alerts_on_topic(stack) if a["subject"].endswith(f"{line['subject']}")
                    and a["alert_type"] == "price_spike"]
        onset = datetime.fromisoformat(line["onset"])
        assert not [a for a in glitched if onset <= a["occurred_at"] <= onset + timedelta(days=2)], glitched


def test_the_subscriber_receives_signed_webhooks_for_matching_alerts_and_nothing_else(stack, subscription):
    receiver: WebhookReceiver = subscription["receiver"]

    def delivered() -> list:
        expected = {
            str(a["event_id"]) for a in alerts_on_topic(stack)
            if a["alert_type"] == "price_spike" and a["event_type"] == "AlertOpened"
            and a["produced_at"] > subscription["created_at"]
        }
        assert expected, "no price spike alert produced since the subscription was created"
        got = {r.json["event_id"] for r in receiver.requests}
        assert expected <= got, f"missing {len(expected - got)} of {len(expected)}"
        return receiver.requests

    requests = eventually(delivered, 300, "webhooks for every price spike opened", every_s=3)
    for request in requests:
        assert request.json["payload"]["alert_type"] == "price_spike"
        verify_signature(subscription["secret"], request.headers["X-Pantau-Signature"], request.body,
                         now=request.received_at)
        assert request.headers["X-Pantau-Delivery-Id"]


def test_the_live_stream_shows_alerts_as_they_happen(stack, subscription):
    """SSE, open since the subscription was made: it shows the key's alerts, each within seconds of
    the processor producing it, and no other alert type."""
    stream: AlertStreamListener = subscription["stream"]

    def streamed() -> list[StreamedEvent]:
        assert stream.error is None, f"the stream broke: {stream.error!r}"
        alerts = [e for e in stream.events if e.data.get("event_type", "").startswith("Alert")]
        assert alerts, "no alert on the stream yet"
        return alerts

    alerts = eventually(streamed, 300, "an alert on the live stream", every_s=2)
    assert {e.data["payload"]["alert_type"] for e in alerts} == {"price_spike"}
    produced = {str(a["event_id"]): a["produced_at"] for a in alerts_on_topic(stack)}
    for event in alerts:
        delay = event.received_at - produced[event.data["event_id"]].timestamp()
        assert delay < 30, f"{event.data['event_id']} reached the stream {delay:.0f}s after it was produced"


@pytest.mark.parametrize("dashboard", sorted((REPO_ROOT / "grafana" / "dashboards").glob("*.json")),
                         ids=lambda p: p.stem)
def test_every_dashboard_panel_answers_with_data(stack, settled, dashboard):
    """Each dashboard as an officer opens it: its own time range up to now (the simulation is caught up)."""
    results = check_dashboard(dashboard, stack.settings, stack.settings.prometheus_url)
    failed = [r for r in results if not r.ok]
    assert not failed, "\n".join(str(r) for r in failed)


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line contains `text` (the stack's state directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append((int(proc.name), cmdline))
    return found


def end_offsets(stack: RunningStack, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=stack.settings.kafka_bootstrap_servers, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def test_ctrl_c_leaves_no_process_and_a_second_run_keeps_topics_and_data(stack, e2e_dir):
    prices_stored = query(stack, "SELECT count(*) FROM price_observations")[0][0]
    prices_on_topic = end_offsets(stack, "pangan.price.v1")
    assert stack.stop() == 0
    assert "stopped; no stack process is left running" in stack.log()
    leftovers = processes_mentioning(str(e2e_dir))
    assert not leftovers, leftovers
    service_ports = [stack.settings.api_port, stack.settings.sink_port, stack.settings.processor_port]
    from pantau.devstack import port_is_open

    assert not [port for port in service_ports if port_is_open("127.0.0.1", port)]

    again = start_stack(e2e_dir, {"SIMULATOR_SPEED": SPEED})
    try:
        again.wait_for_line("Pantau Pangan is running", timeout_s=240)
        assert end_offsets(again, "pangan.price.v1") >= prices_on_topic > 0, "the broker kept the topic's events"
        assert query(again, "SELECT count(*) FROM price_observations")[0][0] >= prices_stored > 0
    finally:
        assert again.stop() == 0
    assert not processes_mentioning(str(e2e_dir))
