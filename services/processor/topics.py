"""Topics the processor reads and writes: the contract's five (partitions from contracts/asyncapi.yaml)
and its two repartition topics, co-partitioned with the tables that consume them."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from pantau.contracts import ALERT_TOPIC, DEADLETTER_TOPIC, HARVEST_TOPIC, PRICE_TOPIC, SHIPMENT_TOPIC, topic_spec
from pantau.settings import Settings


@dataclass(frozen=True)
class TopicNames:
    price: str
    shipment: str
    harvest: str
    alert: str
    deadletter: str
    # price observations of disparity pairs, keyed by commodity (both provinces of a pair meet there)
    price_by_commodity: str
    # shipment snapshots and harvest reports, keyed by "{aggregate}|{key}" (supply, route, harvest)
    aggregates: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        prefix, app_id = settings.processor_topic_prefix, settings.processor_app_id
        return cls(
            price=prefix + PRICE_TOPIC,
            shipment=prefix + SHIPMENT_TOPIC,
            harvest=prefix + HARVEST_TOPIC,
            alert=prefix + ALERT_TOPIC,
            deadletter=prefix + DEADLETTER_TOPIC,
            price_by_commodity=f"{app_id}-price-by-commodity-repartition",
            aggregates=f"{app_id}-aggregates-repartition",
        )

    @property
    def contract_topics_reverse(self) -> dict[str, str]:
        """Contract name -> actual name."""
        return {contract: actual for actual, contract in self.contract_topics().items()}

    def contract_topics(self) -> dict[str, str]:
        """Actual name -> contract name, for the five contract topics."""
        return {
            self.price: PRICE_TOPIC,
            self.shipment: SHIPMENT_TOPIC,
            self.harvest: HARVEST_TOPIC,
            self.alert: ALERT_TOPIC,
            self.deadletter: DEADLETTER_TOPIC,
        }


PARTITIONS = {
    "price": topic_spec(PRICE_TOPIC).partitions,
    "shipment": topic_spec(SHIPMENT_TOPIC).partitions,
    "harvest": topic_spec(HARVEST_TOPIC).partitions,
}
# Repartition topics get the partitions of the stream they regroup; their tables follow them.
PARTITIONS["price_by_commodity"] = PARTITIONS["price"]
PARTITIONS["aggregates"] = PARTITIONS["shipment"]


def raw_topic(app: faust.App, name: str, partitions: int, *, internal: bool) -> faust.TopicT:
    """Bytes in, bytes out: decoding is ours (one pass of the contract's decoder per event).

    acks=False: the processor commits offsets itself, in the Kafka transaction that carries the
    batch's outputs and table changes (see services/processor/committer.py)."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=internal,
        acks=False,
    )
