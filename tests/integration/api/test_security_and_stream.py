"""Per-key rate limits, the live alert stream, and what operators scrape: /metrics and /healthz."""

from __future__ import annotations

import json

from tests.integration.api.conftest import ADMIN_TOKEN
from tests.integration.api.support import AlertStory, StreamReader, eventually, produce


def test_a_key_over_its_rate_limit_gets_429_with_retry_after_and_others_are_unaffected(start_api, api_settings):
    api = start_api(api_settings.model_copy(update={"api_rate_limit_per_minute": 3}))
    keys = []
    with api.client(ADMIN_TOKEN) as admin:
        for name in ("PT Cepat", "PT Sabar"):
            keys.append(admin.post("/v1/admin/keys", json={"name": name}).json()["api_key"])
    with api.client(keys[0]) as hasty, api.client(keys[1]) as patient:
        answers = [hasty.get("/v1/subscriptions").status_code for _ in range(3)]
        limited = hasty.get("/v1/reference/commodities")
        assert answers == [200, 200, 200]
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        assert "rate limit of 3 requests per minute" in limited.json()["detail"]
        assert patient.get("/v1/subscriptions").status_code == 200
    with api.client() as anonymous:  # without a key: limited per client address
        codes = [anonymous.get("/v1/reference/markets").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]


def test_the_stream_shows_a_matching_alert_live_and_not_the_others(api, new_key, api_settings, alert_topic):
    key = new_key("PT Siaga")
    with api.client(key) as client:
        created = client.post(
            "/v1/subscriptions",
            json={"webhook_url": "https://hooks.example/x", "commodities": ["beras"], "min_severity": "alert"},
        )
        assert created.status_code == 201, created.text
    api.wait_for_stream()
    stream = StreamReader(f"{api.url}/v1/alerts/stream", key).start()
    try:
        assert stream.status == 200
        other_commodity = AlertStory(commodity="jagung", place=("market", "pikj", "PIKJ"))
        too_mild = AlertStory(commodity="beras", place=("market", "pasar_smep", "Pasar SMEP"))
        produce(api_settings, alert_topic, [other_commodity.opened("crisis"), too_mild.opened("watch")])
        rice = AlertStory(commodity="beras")
        wanted = [rice.opened("alert"), rice.resolved()]
        produce(api_settings, alert_topic, wanted)

        def both_arrived() -> None:
            assert len(stream.events) >= 2

        eventually(both_arrived)
        assert [(m["event"], m["id"]) for m in stream.events] == [(e.event_type, e.event_id) for e in wanted]
        assert json.loads(stream.events[0]["data"])["payload"]["alert_id"] == rice.alert_id
    finally:
        stream.stop()


def test_the_stream_needs_an_api_key(api):
    with api.client() as anonymous:
        assert anonymous.get("/v1/alerts/stream").status_code == 401


def test_metrics_count_requests_by_route_template_and_health_reports_the_database(api, seeded):
    with api.client() as client:
        client.get("/v1/prices/history", params={"commodity": "beras"})
        client.get(f"/v1/alerts/{seeded['stories']['spike'].alert_id}")
        client.get("/v1/prices/history", params={"commodity": "nope"})
        metrics = client.get("/metrics").text
        health = client.get("/healthz")
    assert 'pantau_http_requests_total{method="GET",route="/v1/prices/history",service="api",status="200"}' in metrics
    assert 'pantau_http_requests_total{method="GET",route="/v1/prices/history",service="api",status="422"}' in metrics
    assert 'route="/v1/alerts/{alert_id}"' in metrics  # the template, never the id
    assert seeded["stories"]["spike"].alert_id not in metrics
    assert "pantau_http_request_duration_seconds_bucket" in metrics
    assert health.status_code == 200 and health.json()["database"] == "ok"


def test_the_docs_and_the_openapi_schema_are_served(api):
    with api.client() as client:
        assert client.get("/docs").status_code == 200
        schema = client.get("/openapi.json").json()
    assert {
        "/v1/prices/history",
        "/v1/supply/days-of-cover",
        "/v1/alerts/{alert_id}",
        "/v1/subscriptions",
        "/v1/deliveries/{delivery_id}/redeliver",
        "/v1/alerts/stream",
    } <= set(schema["paths"])
    assert {"ApiKey", "AdminToken"} <= set(schema["components"]["securitySchemes"])
