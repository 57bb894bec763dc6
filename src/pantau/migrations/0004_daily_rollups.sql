-- Daily rollups for dashboards and the query API, by WIB calendar day (bucket = local midnight in
-- Asia/Jakarta, as an instant). Read them through the views price_daily and arrivals_daily: the same
-- query works whichever way the rollup is kept underneath.
-- * TimescaleDB with the community (timescale) license: price_daily_rollup and arrivals_daily_rollup
--   are continuous aggregates with real-time aggregation (newest rows are included before the
--   hourly refresh), refreshed over everything that changed (start_offset NULL: imports of old
--   PIHPS history are picked up).
-- * TimescaleDB Apache edition and plain PostgreSQL: they are tables that the sink updates in the
--   transaction that inserts the events, from the rows actually inserted (replays add nothing).
-- Both shapes have the same columns, so the views below are created once for both.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       AND current_setting('timescaledb.license', true) = 'timescale' THEN
        EXECUTE $sql$
            CREATE MATERIALIZED VIEW price_daily_rollup
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT time_bucket(INTERVAL '1 day', occurred_at, 'Asia/Jakarta') AS bucket,
                   commodity, quality_grade, market_code, price_level, unit,
                   sum(price_idr) AS price_sum, min(price_idr) AS price_min, max(price_idr) AS price_max,
                   count(*) AS observations
            FROM price_observations
            GROUP BY 1, commodity, quality_grade, market_code, price_level, unit
            WITH NO DATA
        $sql$;
        EXECUTE $sql$
            CREATE MATERIALIZED VIEW arrivals_daily_rollup
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT time_bucket(INTERVAL '1 day', occurred_at, 'Asia/Jakarta') AS bucket,
                   commodity, destination_code,
                   count(*) AS shipments, sum(quantity_kg) AS quantity_kg
            FROM shipment_events
            WHERE event_type = 'ShipmentArrived'
            GROUP BY 1, commodity, destination_code
            WITH NO DATA
        $sql$;
        PERFORM add_continuous_aggregate_policy('price_daily_rollup',
            start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour');
        PERFORM add_continuous_aggregate_policy('arrivals_daily_rollup',
            start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour');
    ELSE
        CREATE TABLE price_daily_rollup (
            bucket        timestamptz      NOT NULL,
            commodity     text             NOT NULL,
            quality_grade text             NOT NULL,
            market_code   text             NOT NULL,
            price_level   text             NOT NULL,
            unit          text             NOT NULL,
            price_sum     double precision NOT NULL,
            price_min     double precision NOT NULL,
            price_max     double precision NOT NULL,
            observations  bigint           NOT NULL,
            PRIMARY KEY (bucket, commodity, quality_grade, market_code, price_level, unit)
        );
        CREATE INDEX price_daily_rollup_commodity_market
            ON price_daily_rollup (commodity, market_code, bucket DESC);
        CREATE TABLE arrivals_daily_rollup (
            bucket           timestamptz      NOT NULL,
            commodity        text             NOT NULL,
            destination_code text             NOT NULL,
            shipments        bigint           NOT NULL,
            quantity_kg      double precision NOT NULL,
            PRIMARY KEY (bucket, commodity, destination_code)
        );
        CREATE INDEX arrivals_daily_rollup_destination
            ON arrivals_daily_rollup (destination_code, commodity, bucket DESC);
    END IF;
END
$$;

-- bucket: start of the WIB day as an instant (for Grafana's time filters); day: that WIB date.
CREATE VIEW price_daily AS
SELECT bucket,
       (bucket AT TIME ZONE 'Asia/Jakarta')::date AS day,
       commodity, quality_grade, market_code, price_level, unit,
       price_sum / observations AS avg_price_idr,
       price_min AS min_price_idr,
       price_max AS max_price_idr,
       observations
FROM price_daily_rollup;

CREATE VIEW arrivals_daily AS
SELECT bucket,
       (bucket AT TIME ZONE 'Asia/Jakarta')::date AS day,
       commodity, destination_code, shipments, quantity_kg
FROM arrivals_daily_rollup;
