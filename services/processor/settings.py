"""The processor's settings: pantau.settings.Settings plus the fields it does not have yet.

These belong in pantau.settings.Settings; once they are there this module goes and the processor
uses Settings directly (the same arrangement as services/sink/settings.py).
"""

from __future__ import annotations

from pydantic import Field

from pantau.settings import Settings


class ProcessorSettings(Settings):
    # Faust app id: the consumer group, the transactional ids and the prefix of the processor's
    # changelog and repartition topics. Tests give every worker group its own.
    processor_app_id: str = "pantau-processor"
    # Prepended to the five contract topic names (tests use a fresh prefix so that the shared
    # test broker's real pangan.* topics are left alone). Empty in every real deployment.
    processor_topic_prefix: str = ""
    # One batch: at most this many events, or what arrived within this many seconds.
    processor_batch_max_events: int = Field(2000, ge=1)
    processor_batch_max_seconds: float = Field(0.05, gt=0)
    # Consumer group session timeout; a killed worker's partitions move after about this long.
    processor_session_timeout_seconds: float = Field(10.0, ge=2)
    # Wall-clock interval of the timer that lets event time pass for idle partitions (supply gaps
    # and overdue shipments need time to pass without events) and refreshes lag metrics.
    processor_tick_seconds: float = Field(1.0, gt=0)
    # Event-time step between two evaluations of the time-driven detectors on one partition.
    processor_tick_event_minutes: float = Field(15.0, gt=0)
    # /healthz turns unhealthy after the worker has had no partition for this long.
    processor_unassigned_unhealthy_seconds: float = Field(120.0, gt=0)
