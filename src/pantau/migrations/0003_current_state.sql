-- Current state: one row per shipment and per alert, upserted by the sink in the same transaction
-- as the event rows, and only moved forward in event time (a replayed or late older event never
-- rolls a row back). Plain tables on TimescaleDB too: a hypertable's unique key must hold its time
-- column, and these rows are keyed by id alone while their time changes.

CREATE TABLE shipment_state (
    shipment_id              uuid             PRIMARY KEY,
    stage                    text             NOT NULL CHECK (stage IN ('dispatched', 'in_transit', 'arrived')),
    commodity                text             NOT NULL,
    quantity_kg              double precision NOT NULL,
    origin_regency_code      text             NOT NULL,
    destination_code         text             NOT NULL,
    -- from ShipmentDispatched (NULL until it is seen)
    dispatched_at            timestamptz,
    planned_eta              timestamptz,
    vehicle_plate            text,
    vehicle_kind             text,
    harvest_id               uuid,
    -- the latest checkpoint passed (NULL before the first)
    last_checkpoint_code     text,
    last_checkpoint_sequence smallint,
    last_checkpoint_at       timestamptz,
    -- the latest arrival estimate (planned, then updated at each checkpoint)
    eta                      timestamptz,
    arrived_at               timestamptz,
    transit_minutes          double precision,
    -- minutes behind plan: (arrived_at, else eta) - planned_eta; NULL while the plan is unknown
    delay_minutes            double precision
        GENERATED ALWAYS AS (extract(epoch FROM coalesce(arrived_at, eta) - planned_eta)::double precision / 60) STORED,
    -- more than an hour behind plan
    delayed                  boolean
        GENERATED ALWAYS AS (coalesce(arrived_at, eta) - planned_eta > INTERVAL '60 minutes') STORED,
    last_event_id            uuid             NOT NULL,
    last_event_type          text             NOT NULL,
    last_event_at            timestamptz      NOT NULL,
    updated_at               timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX shipment_state_stage_destination ON shipment_state (stage, destination_code, commodity);
CREATE INDEX shipment_state_last_event_at ON shipment_state (last_event_at DESC);

-- An AlertOpened ... AlertResolved sequence per alert_id: the row shows the latest event of it.
CREATE TABLE alert_state (
    alert_id           uuid             PRIMARY KEY,
    status             text             NOT NULL
        GENERATED ALWAYS AS (CASE WHEN severity = 'normal' THEN 'resolved' ELSE 'open' END) STORED,
    alert_type         text             NOT NULL,
    subject            text             NOT NULL,
    sequence           integer          NOT NULL,
    severity           text             NOT NULL CHECK (severity IN ('normal', 'watch', 'alert', 'crisis')),
    previous_severity  text,
    commodity          text,
    place_kind         text             NOT NULL,
    place_code         text             NOT NULL,
    place_name         text             NOT NULL,
    affected_volume_kg double precision,
    evidence           jsonb            NOT NULL,
    title_id           text             NOT NULL,
    title_en           text             NOT NULL,
    action_text_id     text             NOT NULL,
    action_text_en     text             NOT NULL,
    opened_at          timestamptz      NOT NULL,
    -- event time of the latest event; the resolution time once resolved
    last_event_at      timestamptz      NOT NULL,
    resolved_at        timestamptz
        GENERATED ALWAYS AS (CASE WHEN severity = 'normal' THEN last_event_at END) STORED,
    last_event_id      uuid             NOT NULL,
    last_event_type    text             NOT NULL,
    updated_at         timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX alert_state_status_severity ON alert_state (status, severity);
CREATE INDEX alert_state_type_opened ON alert_state (alert_type, opened_at DESC);
CREATE INDEX alert_state_subject ON alert_state (subject, opened_at DESC);
CREATE INDEX alert_state_commodity ON alert_state (commodity, opened_at DESC);
