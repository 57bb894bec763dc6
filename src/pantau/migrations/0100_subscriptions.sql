-- Distributors' API keys, their webhook subscriptions and the delivery outbox (issue 7).

-- An API key is shown once; only its SHA-256 is kept. key_id is the visible part of the key.
CREATE TABLE api_keys (
    key_id      text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    key_hash    text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Empty filter arrays accept everything. The signing secret is derived from WEBHOOK_SECRET_KEY,
-- the subscription id and secret_version, so no secret is stored here.
CREATE TABLE subscriptions (
    subscription_id  uuid PRIMARY KEY,
    key_id           text NOT NULL REFERENCES api_keys (key_id),
    description      text,
    webhook_url      text NOT NULL CHECK (webhook_url ~ '^https?://'),
    alert_types      text[] NOT NULL DEFAULT '{}',
    commodities      text[] NOT NULL DEFAULT '{}',
    places           text[] NOT NULL DEFAULT '{}',
    min_severity     text NOT NULL DEFAULT 'watch' CHECK (min_severity IN ('watch', 'alert', 'crisis')),
    secret_version   integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_key_id ON subscriptions (key_id, created_at);

-- The outbox: one row per (subscription, alert event), written before the dispatcher commits its
-- Kafka offset. delivery_id = uuid5(subscription_id, alert event_id), so re-reading the topic
-- adds nothing. queue_position orders deliveries per subscription (head-of-line); a redelivery
-- takes a new position at the tail.
CREATE SEQUENCE webhook_delivery_queue_position;
CREATE TABLE webhook_deliveries (
    delivery_id       uuid PRIMARY KEY,
    subscription_id   uuid NOT NULL REFERENCES subscriptions (subscription_id) ON DELETE CASCADE,
    queue_position    bigint NOT NULL DEFAULT nextval('webhook_delivery_queue_position'),
    alert_event_id    uuid NOT NULL,
    alert_id          uuid NOT NULL,
    event_type        text NOT NULL,
    event             jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead_lettered')),
    attempts          integer NOT NULL DEFAULT 0,  -- all attempts, numbering the attempt log
    round_attempts    integer NOT NULL DEFAULT 0,  -- since queued or redelivered: backoff, dead-letter
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_attempt_at   timestamptz,
    last_status_code  integer,
    last_error        text,
    -- clock_timestamp: the rows of one intake transaction keep their order in the delivery log
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at      timestamptz,
    dead_lettered_at  timestamptz
);
ALTER SEQUENCE webhook_delivery_queue_position OWNED BY webhook_deliveries.queue_position;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription_id, queue_position)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, created_at DESC);
CREATE INDEX webhook_deliveries_by_alert ON webhook_deliveries (subscription_id, alert_id);

-- Every attempt, for the delivery log.
CREATE TABLE webhook_delivery_attempts (
    delivery_id       uuid NOT NULL REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE,
    attempt           integer NOT NULL,
    attempted_at      timestamptz NOT NULL,
    duration_seconds  double precision NOT NULL,
    status_code       integer,
    error             text,
    PRIMARY KEY (delivery_id, attempt)
);

-- 0001 lets pantau_reader (Grafana) read every table; key hashes and distributors' webhook URLs
-- are tenant data it has no use for.
REVOKE ALL ON api_keys, subscriptions FROM pantau_reader;
