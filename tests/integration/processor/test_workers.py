"""Real workers sharing and handing over partitions: state survives a restart (recovered from the
changelogs), two workers split the partitions and together process everything."""

from __future__ import annotations

import time

import pytest

from pantau.contracts import ALERT_TOPIC, PRICE_TOPIC
from tests.integration.processor.events import price

pytestmark = pytest.mark.kafka

SOURCE_PARTITIONS = 6 + 6 + 3 + 6 + 6  # price, shipment, harvest and the two repartition topics


def _wait_metric(worker, name: str, value: float, timeout_s: float = 60.0, **labels: str) -> None:
    deadline = time.monotonic() + timeout_s
    while worker.metric(name, **labels) < value:
        assert time.monotonic() < deadline, f"{name} stayed below {value}; log:\n{worker.log_tail()}"
        time.sleep(0.2)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_a_restarted_worker_recovers_the_price_history_it_needs_from_the_changelog(processor_env, stop):
    history = [price("beras", "pibc", day, 13_000 + 10 * (day % 3)) for day in range(30)]
    first = processor_env.worker("first").start()
    first.wait_assigned()
    processor_env.produce(history)
    _wait_metric(first, "pantau_events_consumed_total", len(history), topic=PRICE_TOPIC)
    first.kill() if stop == "SIGKILL" else first.stop()

    # a jump held two days alerts only against the 28-day baseline the first worker built
    second = processor_env.worker("second").start()
    second.wait_assigned()
    processor_env.produce([price("beras", "pibc", 30, 15_500), price("beras", "pibc", 31, 15_600)])
    alerts = processor_env.read(ALERT_TOPIC, until=lambda ev: len(ev) >= 1, timeout_s=90, settle_s=1)
    (opened,) = [a for a in alerts if a.event_type == "AlertOpened"]
    assert opened.payload.subject == "price_spike:beras:pibc"
    evidence = {s.name: s for s in opened.payload.evidence.signals}
    change_28d = next(s for name, s in evidence.items() if name.startswith("change_28d"))
    assert change_28d.baseline == pytest.approx(13_010, abs=20)  # from the recovered history
    assert second.metric("pantau_events_consumed_total", topic=PRICE_TOPIC) == 2  # no re-reading


def test_two_workers_share_the_partitions_and_together_process_every_event(processor_env):
    one = processor_env.worker("one").start()
    two = processor_env.worker("two").start()
    deadline = time.monotonic() + 120
    while True:
        shares = [(w.health() or {}).get("assigned_partitions", 0) for w in (one, two)]
        if all(shares) and sum(shares) == SOURCE_PARTITIONS:
            break
        assert time.monotonic() < deadline, f"partitions not shared: {shares}"
        one.assert_running()
        two.assert_running()
        time.sleep(0.5)

    events = [price(commodity, market, day, base * (1.4 if day >= 40 and market == "prov_31" else 1.0),
                    level="retail")
              for day in range(45) for commodity, base in (("beras", 13_000), ("telur_ayam", 28_000),
                                                          ("daging_ayam", 36_000), ("gula_pasir", 17_500))
              for market in ("prov_31", "prov_18")]  # fmt: skip
    processor_env.produce(events)
    forwarded = processor_env.read_forwarded(
        "price-by-commodity",
        until=lambda items: len({item["event_id"] for item in items}) >= len(events),
        timeout_s=90,
    )
    assert {item["event_id"] for item in forwarded} == {e.event_id for e in events}
    # forwards are written before the batch's transaction commits (and its metrics count): wait for both
    deadline = time.monotonic() + 30
    while (
        sum(consumed := [w.metric("pantau_events_consumed_total", topic=PRICE_TOPIC) for w in (one, two)]) < len(events)
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    time.sleep(1)  # then nothing more may come
    consumed = [w.metric("pantau_events_consumed_total", topic=PRICE_TOPIC) for w in (one, two)]
    assert all(consumed) and sum(consumed) == len(events), consumed  # each did part, nothing twice
    spikes = {f"price_spike:{c}:prov_31" for c in ("beras", "telur_ayam", "daging_ayam", "gula_pasir")}
    alerts = processor_env.read(ALERT_TOPIC, until=lambda ev: spikes <= {a.payload.subject for a in ev}, settle_s=2)
    assert spikes <= {a.payload.subject for a in alerts}


def test_a_worker_creates_its_repartition_and_changelog_topics_before_it_consumes(processor_env):
    """Faust creates them only after joining; until then its consumer finds no metadata for them and
    the time-driven detectors wait (alerts came minutes late in the stack)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    from pantau.kafka import admin_client

    worker = processor_env.worker("w").start()
    worker.wait_assigned()
    app_id = processor_env.app_id
    partitions = {f"{app_id}-price-by-commodity-repartition": 6, f"{app_id}-aggregates-repartition": 6}
    for table, count in (("price", 6), ("disparity", 6), ("shipment", 6), ("harvest-intake", 3), ("supply", 6),
                         ("route", 6), ("harvest", 6)):  # fmt: skip
        partitions[f"{app_id}-{table}-changelog"] = count
    admin = admin_client(processor_env.settings)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(partitions))}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in partitions]
        configs = admin.describe_configs(resources)["topic"]  # kafka-python 2.2: {topic: {key: {value...}}}
    finally:
        admin.close()
    assert described == partitions
    assert set(configs) == set(partitions)
    for name, config in configs.items():
        assert config.get("min.insync.replicas", {}).get("value") == "1", name  # the local broker has one replica
        if name.endswith("-changelog"):
            assert config.get("cleanup.policy", {}).get("value") == "compact", name
    log = worker.log_tail(200_000)
    assert "topics created" in log and log.index("topics created") < log.index("[^--Consumer]: Starting")
    assert "not found in cluster metadata" not in log
