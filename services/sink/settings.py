"""The sink's settings: pantau.settings.Settings plus the one field it does not have yet.

SINK_CONSUMER_GROUP moves the sink to another consumer group (tests run a sink with a fresh group
on the shared broker). Belongs in pantau.settings.Settings; once it is there this module goes and
__main__ uses Settings directly."""

from __future__ import annotations

from pantau.settings import Settings


class SinkSettings(Settings):
    sink_consumer_group: str = "pantau-sink"
