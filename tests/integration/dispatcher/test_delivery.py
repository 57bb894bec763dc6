"""The dispatcher delivers each matching alert lifecycle event to the subscribed webhook, signed,
in order, at least once with a stable delivery id, and keeps what it cannot deliver yet."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer
from prometheus_client import REGISTRY

from pantau.contracts import decode_event
from pantau.subscriptions.delivery import delivery_id
from pantau.subscriptions.signing import SignatureError, verify
from tests.integration.api.support import AlertStory, eventually, produce


def subscribe(api, key: str, url: str, **filters: object) -> dict:
    with api.client(key) as client:
        response = client.post("/v1/subscriptions", json={"webhook_url": url, **filters})
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(api, key: str, **params: object) -> list[dict]:
    with api.client(key) as client:
        response = client.get("/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_each_subscription_receives_its_matching_alerts_signed_and_nothing_else(
    api, new_key, api_settings, alert_topic, start_dispatcher, receiver
):
    rice_hook, chili_hook = receiver(), receiver()
    rice_key, chili_key = new_key("PT Beras Jaya"), new_key("PT Cabai Merah")
    rice = subscribe(api, rice_key, rice_hook.url, commodities=["beras"], places=["31"])
    chili = subscribe(api, chili_key, chili_hook.url, commodities=["cabai_merah"], min_severity="crisis")
    start_dispatcher()

    rice_alert = AlertStory(commodity="beras")
    chili_watch = AlertStory(commodity="cabai_merah", place=("market", "pikj", "Pasar Induk Kramat Jati"))
    rice_in_lampung = AlertStory(commodity="beras", place=("market", "pasar_smep", "Pasar SMEP"))
    events = [
        rice_alert.opened("alert"),
        chili_watch.opened("watch"),  # below the chili subscription's minimum
        rice_in_lampung.opened("crisis"),  # not in province 31
        rice_alert.updated("crisis"),
        chili_watch.updated("crisis"),  # crosses the minimum: delivered from here on
        rice_alert.resolved(),
        chili_watch.resolved(),
    ]
    produce(api_settings, alert_topic, events)

    def rice_got_three() -> None:
        assert len(rice_hook.received) == 3

    def chili_got_two() -> None:
        assert len(chili_hook.received) == 2

    eventually(rice_got_three)
    eventually(chili_got_two)
    assert [e["event_id"] for e in rice_hook.events()] == [events[i].event_id for i in (0, 3, 5)]
    assert [e["event_id"] for e in chili_hook.events()] == [events[i].event_id for i in (4, 6)]

    for hook, subscription in ((rice_hook, rice), (chili_hook, chili)):
        for received in hook.received:
            headers = {k.lower(): v for k, v in received.headers.items()}
            verify(subscription["signing_secret"], headers["x-pantau-signature"], received.body)
            event = decode_event(received.body)  # the body is the event exactly as the contract says
            expected_id = delivery_id(uuid.UUID(subscription["subscription_id"]), event.event_id)
            assert headers["x-pantau-delivery-id"] == str(expected_id)
            assert headers["x-pantau-event-type"] == event.event_type
            assert headers["x-pantau-subscription-id"] == subscription["subscription_id"]
            assert headers["content-type"] == "application/json"

    log = deliveries(api, rice_key)
    assert {d["status"] for d in log} == {"delivered"} and len(log) == 3
    assert deliveries(api, chili_key, subscription_id=rice["subscription_id"]) == []  # not its subscription


def test_a_tampered_body_or_another_secret_fails_verification(
    api, new_key, api_settings, alert_topic, start_dispatcher, receiver
):
    hook = receiver()
    subscription = subscribe(api, new_key("PT Waspada"), hook.url)
    start_dispatcher()
    produce(api_settings, alert_topic, [AlertStory().opened()])

    def received() -> None:
        assert hook.received

    eventually(received)
    got = hook.received[0]
    signature = {k.lower(): v for k, v in got.headers.items()}["x-pantau-signature"]
    verify(subscription["signing_secret"], signature, got.body)
    tampered = got.body.replace(b'"severity":"alert"', b'"severity":"watch"')
    assert tampered != got.body
    with pytest.raises(SignatureError, match="does not match the body"):
        verify(subscription["signing_secret"], signature, tampered)
    with pytest.raises(SignatureError, match="does not match the body"):
        verify("whsec_" + "0" * 64, signature, got.body)


def test_a_receiver_down_for_a_while_gets_every_alert_later_in_order(
    api, new_key, api_settings, alert_topic, start_dispatcher, receiver
):
    hook = receiver()
    key = new_key("PT Sabar")
    subscribe(api, key, hook.url)
    start_dispatcher()
    hook.stop()  # connection refused from now on

    first, second = AlertStory(commodity="beras"), AlertStory(commodity="jagung")
    events = [
        first.opened("watch"),
        second.opened("alert"),
        first.updated("crisis"),
        second.resolved(),
        first.updated("alert"),
        first.resolved(),
    ]
    produce(api_settings, alert_topic, events)

    def retried_several_times() -> None:
        log = deliveries(api, key)
        assert len(log) == len(events)
        head = next(d for d in log if d["alert_event_id"] == events[0].event_id)
        assert head["attempts"] >= 3 and head["status"] == "pending"
        assert "ConnectError" in head["last_error"]
        # Head-of-line: nothing behind the first delivery has been tried.
        assert sorted(d["attempts"] for d in log) == [0] * (len(events) - 1) + [head["attempts"]]

    eventually(retried_several_times)
    hook.start()  # back on the same port

    def all_delivered() -> None:
        assert len(hook.received) == len(events)

    eventually(all_delivered)
    assert [e["event_id"] for e in hook.events()] == [e.event_id for e in events]
    assert {d["status"] for d in deliveries(api, key)} == {"delivered"}


def test_after_the_last_attempt_a_delivery_is_dead_lettered_then_redelivered_on_request(
    api, new_key, api_settings, alert_topic, start_dispatcher, receiver
):
    hook = receiver()
    hook.answer = 500
    key = new_key("PT Gagal")
    subscription = subscribe(api, key, hook.url)
    failed_before = REGISTRY.get_sample_value("pantau_webhook_deadlettered_total") or 0
    start_dispatcher(dispatcher_max_attempts=3)
    story = AlertStory()
    events = [story.opened(), story.resolved()]
    produce(api_settings, alert_topic, events)

    def both_dead_lettered() -> list[dict]:
        log = deliveries(api, key, status="dead_lettered")
        assert len(log) == 2
        return log

    dead = eventually(both_dead_lettered)  # the first giving up lets the second be tried
    assert REGISTRY.get_sample_value("pantau_webhook_deadlettered_total") - failed_before == 2
    with api.client(key) as client:
        detail = client.get(f"/v1/deliveries/{dead[-1]['delivery_id']}").json()
        assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500, 500]
        assert detail["event"]["event_id"] == events[0].event_id
        assert detail["last_error"].startswith("HTTP 500")

        hook.answer = 200
        for delivery in reversed(dead):  # oldest first, so they arrive in order
            response = client.post(f"/v1/deliveries/{delivery['delivery_id']}/redeliver")
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "pending"

        def redelivered() -> None:
            assert len(hook.received) == 2

        eventually(redelivered)
        assert [e["event_id"] for e in hook.events()] == [e.event_id for e in events]
        sent_ids = [{k.lower(): v for k, v in r.headers.items()}["x-pantau-delivery-id"] for r in hook.received]
        assert sent_ids == [str(delivery_id(uuid.UUID(subscription["subscription_id"]), e.event_id)) for e in events]
        again = client.get(f"/v1/deliveries/{dead[-1]['delivery_id']}").json()
        assert again["status"] == "delivered" and len(again["attempt_log"]) == 4
        # Another distributor cannot see or redeliver it.
        with api.client(new_key("PT Lain")) as other:
            assert other.get(f"/v1/deliveries/{dead[-1]['delivery_id']}").status_code == 404
            assert other.post(f"/v1/deliveries/{dead[-1]['delivery_id']}/redeliver").status_code == 404


def test_alerts_from_before_a_subscription_existed_are_not_delivered(
    api, new_key, api_settings, alert_topic, start_dispatcher, receiver
):
    old = AlertStory(commodity="jagung")
    produce(api_settings, alert_topic, [old.opened()])
    hook = receiver()
    subscribe(api, new_key("PT Baru"), hook.url)
    start_dispatcher()  # a new group reads the topic from the beginning
    new = AlertStory(commodity="beras")
    produce(api_settings, alert_topic, [new.opened()])

    def got_the_new_one() -> None:
        assert [e["payload"]["commodity"] for e in hook.events()] == ["beras"]

    eventually(got_the_new_one)


def test_reading_the_topic_again_delivers_nothing_twice(
    api, new_key, api_settings, alert_topic, start_dispatcher, receiver
):
    hook = receiver()
    key = new_key("PT Sekali")
    subscribe(api, key, hook.url)
    story = AlertStory()
    events = [story.opened(), story.updated("crisis")]
    first = start_dispatcher()
    produce(api_settings, alert_topic, events)

    def delivered() -> None:
        assert len(hook.received) == 2

    eventually(delivered)
    first.stop()
    start_dispatcher()  # another consumer group: re-reads every event from the start
    produce(api_settings, alert_topic, [story.resolved()])

    def third_delivered() -> None:
        assert len(hook.received) == 3

    eventually(third_delivered)
    assert len({e["event_id"] for e in hook.events()}) == 3
    assert len(deliveries(api, key)) == 3


def test_a_record_that_is_no_valid_alert_is_dead_lettered_and_the_rest_delivered(
    api, new_key, api_settings, alert_topic, deadletter_topic, start_dispatcher, receiver
):
    hook = receiver()
    subscribe(api, new_key("PT Tegar"), hook.url)
    start_dispatcher()
    story = AlertStory()
    produce(api_settings, alert_topic, [story.opened()], raw=[b'{"event_id": "nope"}', b"\xff not json"])
    produce(api_settings, alert_topic, [story.resolved()])

    def both_delivered() -> None:
        assert len(hook.received) == 2

    eventually(both_delivered)
    consumer = KafkaConsumer(
        deadletter_topic,
        bootstrap_servers=api_settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
        group_id=None,
    )
    letters = [decode_event(m.value) for m in consumer]
    consumer.close()
    assert sorted(letter.payload.error_type for letter in letters) == ["invalid_json", "unknown_event_type"]
    assert all(letter.payload.original_topic == alert_topic for letter in letters)
