-- One row per event, written by the sink (COPY into a staging table, then INSERT ... ON CONFLICT DO
-- NOTHING): replaying a topic writes nothing twice. Every time is a timestamptz (an instant; the
-- producer's +07:00 offset is not kept). occurred_at is event time, produced_at the producer's clock,
-- ingested_at the database clock when the sink wrote the row (ingest latency = ingested_at - produced_at).
-- On TimescaleDB the tables become hypertables on occurred_at (end of file); on plain PostgreSQL they
-- stay plain tables with the same columns and indexes, so every query works on both.
-- The unique key is (occurred_at, event_id): a hypertable's unique indexes must include its time
-- column, and with time first the same index serves time-range scans and receives inserts in time
-- order (event_id first made the sink's upsert about 40% slower: tests/benchmarks/bench_sink.py).

CREATE TABLE price_observations (
    event_id        uuid             NOT NULL,
    occurred_at     timestamptz      NOT NULL,
    produced_at     timestamptz      NOT NULL,
    ingested_at     timestamptz      NOT NULL DEFAULT now(),
    source          text             NOT NULL,
    correlation_id  uuid,
    schema_version  text             NOT NULL,
    commodity       text             NOT NULL,
    quality_grade   text             NOT NULL,
    market_code     text             NOT NULL,
    province_code   text             NOT NULL,
    price_level     text             NOT NULL CHECK (price_level IN ('producer', 'wholesale', 'retail')),
    unit            text             NOT NULL CHECK (unit IN ('kg', 'litre')),
    -- IDR per `unit` (the event's price_idr_per_kg or price_idr_per_litre)
    price_idr       double precision NOT NULL CHECK (price_idr > 0),
    UNIQUE (occurred_at, event_id)
);
CREATE INDEX price_observations_commodity_market_time ON price_observations (commodity, market_code, occurred_at DESC);

CREATE TABLE harvests (
    event_id                 uuid             NOT NULL,
    occurred_at              timestamptz      NOT NULL,
    produced_at              timestamptz      NOT NULL,
    ingested_at              timestamptz      NOT NULL DEFAULT now(),
    source                   text             NOT NULL,
    correlation_id           uuid,
    schema_version           text             NOT NULL,
    harvest_id               uuid             NOT NULL,
    regency_code             text             NOT NULL,
    commodity                text             NOT NULL,
    quality_grade            text,
    quantity_kg              double precision NOT NULL CHECK (quantity_kg > 0),
    harvested_on             date             NOT NULL,
    expected_available_from  date             NOT NULL,
    expected_available_until date             NOT NULL,
    UNIQUE (occurred_at, event_id)
);
CREATE INDEX harvests_commodity_regency_time ON harvests (commodity, regency_code, occurred_at DESC);
CREATE INDEX harvests_harvest_id ON harvests (harvest_id);

-- Every lifecycle event of every shipment; columns a given event type does not carry are NULL.
CREATE TABLE shipment_events (
    event_id            uuid             NOT NULL,
    occurred_at         timestamptz      NOT NULL,
    produced_at         timestamptz      NOT NULL,
    ingested_at         timestamptz      NOT NULL DEFAULT now(),
    source              text             NOT NULL,
    correlation_id      uuid,
    schema_version      text             NOT NULL,
    event_type          text             NOT NULL
        CHECK (event_type IN ('ShipmentDispatched', 'ShipmentCheckpointPassed', 'ShipmentArrived')),
    shipment_id         uuid             NOT NULL,
    commodity           text             NOT NULL,
    quantity_kg         double precision NOT NULL CHECK (quantity_kg > 0),
    origin_regency_code text             NOT NULL,
    destination_code    text             NOT NULL,
    -- Dispatched: planned arrival; CheckpointPassed: updated estimate; Arrived: NULL
    eta                 timestamptz,
    -- ShipmentDispatched
    vehicle_plate       text,
    vehicle_kind        text,
    vehicle_capacity_kg double precision,
    harvest_id          uuid,
    planned_route       jsonb,
    -- ShipmentCheckpointPassed
    checkpoint_code     text,
    checkpoint_sequence smallint,
    planned_at          timestamptz,
    -- ShipmentArrived
    dispatched_at       timestamptz,
    transit_minutes     double precision,
    UNIQUE (occurred_at, event_id)
);
CREATE INDEX shipment_events_shipment_time ON shipment_events (shipment_id, occurred_at DESC);
CREATE INDEX shipment_events_commodity_destination_time
    ON shipment_events (commodity, destination_code, occurred_at DESC);

-- Every alert lifecycle event (AlertOpened, AlertUpdated, AlertResolved).
CREATE TABLE alert_events (
    event_id            uuid             NOT NULL,
    occurred_at         timestamptz      NOT NULL,
    produced_at         timestamptz      NOT NULL,
    ingested_at         timestamptz      NOT NULL DEFAULT now(),
    source              text             NOT NULL,
    correlation_id      uuid,
    schema_version      text             NOT NULL,
    event_type          text             NOT NULL CHECK (event_type IN ('AlertOpened', 'AlertUpdated', 'AlertResolved')),
    alert_id            uuid             NOT NULL,
    alert_type          text             NOT NULL,
    subject             text             NOT NULL,
    sequence            integer          NOT NULL CHECK (sequence >= 1),
    severity            text             NOT NULL CHECK (severity IN ('normal', 'watch', 'alert', 'crisis')),
    previous_severity   text,
    commodity           text,
    place_kind          text             NOT NULL,
    place_code          text             NOT NULL,
    place_name          text             NOT NULL,
    affected_volume_kg  double precision,
    evidence            jsonb            NOT NULL,
    title_id            text             NOT NULL,
    title_en            text             NOT NULL,
    action_text_id      text             NOT NULL,
    action_text_en      text             NOT NULL,
    opened_at           timestamptz      NOT NULL,
    UNIQUE (occurred_at, event_id)
);
CREATE INDEX alert_events_alert_time ON alert_events (alert_id, occurred_at DESC);
CREATE INDEX alert_events_type_time ON alert_events (alert_type, occurred_at DESC);
CREATE INDEX alert_events_commodity_time ON alert_events (commodity, occurred_at DESC);

-- Records a consumer could not process (pangan.deadletter.v1), with the original bytes.
CREATE TABLE dead_letters (
    event_id           uuid        NOT NULL,
    occurred_at        timestamptz NOT NULL,
    produced_at        timestamptz NOT NULL,
    ingested_at        timestamptz NOT NULL DEFAULT now(),
    source             text        NOT NULL,
    correlation_id     uuid,
    schema_version     text        NOT NULL,
    original_topic     text        NOT NULL,
    original_partition integer     NOT NULL,
    original_offset    bigint      NOT NULL,
    original_key       bytea,
    original_value     bytea,
    original_event_id  uuid,
    error_type         text        NOT NULL,
    error_message      text        NOT NULL,
    consumer           text        NOT NULL,
    failed_at          timestamptz NOT NULL,
    UNIQUE (occurred_at, event_id)
);
CREATE INDEX dead_letters_topic_time ON dead_letters (original_topic, occurred_at DESC);
CREATE INDEX dead_letters_error_time ON dead_letters (error_type, occurred_at DESC);

-- Provisioning creates the extension (not a migration): plain PostgreSQL keeps plain tables.
DO $$
DECLARE
    event_table text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    FOREACH event_table IN ARRAY ARRAY['price_observations', 'harvests', 'shipment_events', 'alert_events', 'dead_letters']
    LOOP
        -- No default occurred_at index: the (occurred_at, event_id) unique index serves time ranges.
        PERFORM create_hypertable(
            event_table::regclass, by_range('occurred_at', INTERVAL '7 days'), create_default_indexes => false
        );
    END LOOP;
END
$$;
