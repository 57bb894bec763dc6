-- Reference data from contracts/reference/ (the JSON files stay the single source), so dashboards and
-- queries join names, HET/HAP prices and daily requirements instead of copying them. Filled and kept
-- equal to the files by `pantau bootstrap` / `pantau migrate` (pantau.storage.reference_tables) in one
-- transaction; nothing else writes them. Plain tables: small, read by join, same on plain PostgreSQL.

-- The version of each reference file the rows below come from.
CREATE TABLE ref_files (
    name       text        PRIMARY KEY,  -- commodities | markets | regencies | checkpoints
    version    text        NOT NULL,     -- the file's "version" (major.minor)
    loaded_at  timestamptz NOT NULL DEFAULT now()  -- when this version was first loaded
);

CREATE TABLE ref_commodities (
    code           text   PRIMARY KEY,
    name_id        text   NOT NULL,  -- Indonesian name (dashboards show this)
    name_en        text   NOT NULL,
    unit           text   NOT NULL CHECK (unit IN ('kg', 'litre')),
    quality_grades text[] NOT NULL,
    default_grade  text   NOT NULL
);

-- HET (legal retail ceiling) and HAP (government reference price) per commodity, grade and price level.
CREATE TABLE ref_reference_prices (
    commodity_code text             NOT NULL REFERENCES ref_commodities (code),
    kind           text             NOT NULL CHECK (kind IN ('het', 'hap')),
    quality_grade  text             NOT NULL,
    price_level    text             NOT NULL CHECK (price_level IN ('producer', 'wholesale', 'retail')),
    zone           text,
    province_codes text[],           -- BPS province codes it applies to; NULL: national
    effective_from date,
    price_idr      double precision NOT NULL CHECK (price_idr > 0),  -- IDR per unit of the commodity
    legal_basis    text             NOT NULL,
    note           text,
    -- one price per commodity, kind, grade, level, zone and start date (zone and date may be NULL)
    CONSTRAINT ref_reference_prices_key
        UNIQUE NULLS NOT DISTINCT (commodity_code, kind, quality_grade, price_level, zone, effective_from)
);

CREATE TABLE ref_markets (
    code               text             PRIMARY KEY,
    name               text             NOT NULL,
    kind               text             NOT NULL
        CHECK (kind IN ('wholesale', 'retail', 'province_average', 'warehouse')),
    province_code      text             NOT NULL,  -- BPS province code
    city               text,
    latitude           double precision,
    longitude          double precision,
    supply_destination boolean          NOT NULL   -- a market the supply dashboards and detectors watch
);

-- What a supply destination needs per commodity and its normal stock; kg like the event tables'
-- quantity_kg (double precision: "requirement / 1000" gives tonnes, not an integer division).
CREATE TABLE ref_market_requirements (
    market_code           text             NOT NULL REFERENCES ref_markets (code),
    commodity_code        text             NOT NULL REFERENCES ref_commodities (code),
    daily_requirement_kg  double precision,  -- per day; NULL: not known (e.g. a warehouse)
    typical_inflow_min_kg double precision,  -- per day
    typical_inflow_max_kg double precision,
    safe_stock_min_kg     double precision,
    safe_stock_max_kg     double precision,
    inflow_peak_weekday   text,
    basis                 text             NOT NULL CHECK (basis IN ('reported', 'assumption')),
    PRIMARY KEY (market_code, commodity_code)
);

CREATE TABLE ref_regencies (
    code                       text             PRIMARY KEY,  -- BPS/Kemendagri code with a dot, e.g. 18.03
    name                       text             NOT NULL,
    kind                       text             NOT NULL CHECK (kind IN ('kabupaten', 'kota')),
    seat                       text             NOT NULL,
    to_bakauheni_km            double precision NOT NULL,
    to_bakauheni_road_minutes  integer          NOT NULL   -- normal loaded-truck time to the port
);

-- Route checkpoints in travel order, with the normal time from each to the next stop of the route.
CREATE TABLE ref_checkpoints (
    code                    text     PRIMARY KEY,
    name                    text     NOT NULL,
    kind                    text     NOT NULL CHECK (kind IN ('port', 'ferry_crossing', 'road')),
    province_code           text,
    regency_code            text,
    sequence                smallint NOT NULL,
    normal_minutes_to_next  integer,  -- NULL: no route leaves from it
    min_minutes_to_next     integer,
    max_minutes_to_next     integer
);

-- Grafana and the query API read these as pantau_reader (0001's default privileges cover them too;
-- granted here so the tables are readable whichever role runs the migration).
GRANT SELECT ON ref_files, ref_commodities, ref_reference_prices, ref_markets, ref_market_requirements,
    ref_regencies, ref_checkpoints TO pantau_reader;
