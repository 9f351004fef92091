-- Initial warehouse schema (PostgreSQL). Applied by `bandit-pipeline db upgrade`
-- (Alembic revision 0001). Column meanings: docs/warehouse.md.

-- One row per telemetry event. event_id is the producer's id: a repeated event_id is the
-- same event, so ingestion inserts it once.
CREATE TABLE bandit_rewards (
    event_id         text        NOT NULL PRIMARY KEY,
    event_type       text        NOT NULL
        CHECK (event_type IN ('impression', 'click', 'add_to_cart', 'purchase')),
    occurred_at      timestamptz NOT NULL,
    ingested_at      timestamptz NOT NULL DEFAULT statement_timestamp(),
    namespace        text        NOT NULL DEFAULT 'default',
    surface          text        NOT NULL,
    user_id          text        NOT NULL,
    request_id       text        NOT NULL,
    item_id          text        NOT NULL,
    slot             integer     CHECK (slot >= 0),
    explore          boolean     NOT NULL DEFAULT false,
    bandit_policy_id text,
    experiment       text,
    variant          text        CHECK (variant IN ('treatment', 'control'))
);

-- The 15-minute job selects the events that became visible in a window.
CREATE INDEX bandit_rewards_ingested_at_idx ON bandit_rewards (ingested_at);

-- Outcomes join their impression on (namespace, surface, request_id, item_id).
CREATE INDEX bandit_rewards_impression_key_idx
    ON bandit_rewards (namespace, surface, request_id, item_id);

-- Rows that failed validation, kept with the reason. raw_hash makes a re-ingested bad
-- row land once.
CREATE TABLE bandit_rewards_rejected (
    rejected_id bigserial   PRIMARY KEY,
    raw_hash    text        NOT NULL UNIQUE,
    raw         text        NOT NULL,
    reason      text        NOT NULL,
    source      text,
    line_number bigint,
    rejected_at timestamptz NOT NULL DEFAULT statement_timestamp()
);

-- The item catalog, upserted by (namespace, item_id).
CREATE TABLE item_catalog (
    namespace       text             NOT NULL DEFAULT 'default',
    item_id         text             NOT NULL,
    title           text,
    category        text,
    price           double precision CHECK (price IS NULL OR price >= 0),
    availability    double precision CHECK (availability IS NULL OR availability BETWEEN 0 AND 1),
    freshness_index double precision CHECK (freshness_index IS NULL OR freshness_index BETWEEN 0 AND 1),
    first_seen_at   timestamptz,
    updated_at      timestamptz      NOT NULL DEFAULT statement_timestamp(),
    PRIMARY KEY (namespace, item_id)
);

-- Catalog rows that failed validation.
CREATE TABLE item_catalog_rejected (
    rejected_id bigserial   PRIMARY KEY,
    raw_hash    text        NOT NULL UNIQUE,
    raw         text        NOT NULL,
    reason      text        NOT NULL,
    source      text,
    line_number bigint,
    rejected_at timestamptz NOT NULL DEFAULT statement_timestamp()
);
