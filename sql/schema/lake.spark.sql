-- The Spark warehouse (docs/spark.md): Parquet tables under one directory, :location, one
-- folder per table, in the catalog database :database. Run every time the warehouse is
-- opened: a table that exists is left as it is, and a catalog without memory of its own
-- (Spark's in-memory catalog, a local session's) finds the files again. The database
-- becomes the session's current one, so the window statements name tables as on the
-- other engines. Every timestamp is UTC (the warehouse's sessions set
-- spark.sql.session.timeZone to UTC).
CREATE DATABASE IF NOT EXISTS IDENTIFIER(:database) LOCATION :location;

USE IDENTIFIER(:database);

-- One row per telemetry event (docs/warehouse.md, bandit_rewards), partitioned by the
-- hour of ingested_at, so that a window reads the hours it covers and no others. A row
-- counts once its ingest batch is committed (bandit_ingest_batches below): every
-- statement of the warehouse reads the session's view of the same name, which holds the
-- committed rows only (schema/committed_views.spark.sql).
CREATE TABLE IF NOT EXISTS bandit_rewards (
    event_id         STRING,
    event_type       STRING,
    occurred_at      TIMESTAMP,
    ingested_at      TIMESTAMP,
    namespace        STRING,
    surface          STRING,
    user_id          STRING,
    request_id       STRING,
    item_id          STRING,
    slot             INT,
    explore          BOOLEAN,
    bandit_policy_id STRING,
    experiment       STRING,
    variant          STRING,
    batch_id         STRING COMMENT 'the ingest batch that wrote the row',
    ingested_hour    TIMESTAMP COMMENT 'date_trunc(HOUR, ingested_at): the partition'
) USING parquet PARTITIONED BY (ingested_hour) LOCATION :bandit_rewards_location;

-- Rows that failed validation, beside their reason; one row per raw row (raw_hash), as on
-- the other engines, committed with the batch that read them.
CREATE TABLE IF NOT EXISTS bandit_rewards_rejected (
    raw_hash    STRING,
    raw         STRING,
    reason      STRING,
    source      STRING,
    line_number BIGINT,
    rejected_at TIMESTAMP,
    batch_id    STRING
) USING parquet LOCATION :bandit_rewards_rejected_location;

-- The commit log of ingestion: one file per committed batch, named by its sequence number
-- (00000000000000000042.parquet) and created only if no file of that name exists
-- (warehouse/spark_ingest.py). A batch's rows count from the moment its file appears.
CREATE TABLE IF NOT EXISTS bandit_ingest_batches (
    batch_id     STRING,
    sequence     BIGINT,
    kind         STRING COMMENT 'events, catalog (a whole catalog) or catalog_rejects',
    events       BIGINT,
    rejects      BIGINT,
    source       STRING,
    committed_at TIMESTAMP
) USING parquet LOCATION :bandit_ingest_batches_location;

-- Per window and item: what the events that became visible in the window changed.
CREATE TABLE IF NOT EXISTS bandit_reward_aggregates (
    namespace           STRING,
    surface             STRING,
    item_id             STRING,
    impressions         BIGINT,
    clicks              BIGINT,
    add_to_carts        BIGINT,
    purchases           BIGINT,
    reward_evidence     DOUBLE,
    non_reward_evidence DOUBLE,
    late_corrections    BIGINT,
    as_of               TIMESTAMP
) USING parquet PARTITIONED BY (as_of) LOCATION :bandit_reward_aggregates_location;

-- Beta posterior of each item whose evidence changed in the window ending at as_of.
CREATE TABLE IF NOT EXISTS bandit_posteriors (
    namespace STRING,
    surface   STRING,
    item_id   STRING,
    alpha     DOUBLE,
    beta      DOUBLE,
    as_of     TIMESTAMP
) USING parquet PARTITIONED BY (as_of) LOCATION :bandit_posteriors_location;

-- One row per materialised window: how it was computed and with what settings. Written
-- last, so a window without its row here is not materialised.
CREATE TABLE IF NOT EXISTS bandit_posterior_runs (
    window_start           TIMESTAMP,
    mode                   STRING,
    parameters_fingerprint STRING,
    prior_alpha            DOUBLE,
    prior_beta             DOUBLE,
    half_life_days         DOUBLE,
    items_touched          BIGINT,
    posterior_rows         BIGINT,
    impressions            BIGINT,
    reward_evidence        DOUBLE,
    computed_at            TIMESTAMP,
    as_of                  TIMESTAMP
) USING parquet PARTITIONED BY (as_of) LOCATION :bandit_posterior_runs_location;

-- Per window (as_of): what the events that became visible in it change in the metric
-- rollups, per impression window (window_start) and group (metrics/window_deltas.sql).
-- The metrics of a window are the sum of its rows over every as_of.
CREATE TABLE IF NOT EXISTS bandit_metric_deltas (
    window_start  TIMESTAMP,
    namespace     STRING,
    surface       STRING,
    experiment    STRING,
    variant       STRING,
    explore       INT,
    impressions   BIGINT,
    clicked       BIGINT,
    carted        BIGINT,
    purchased     BIGINT,
    reward_sum    DOUBLE,
    reward_sq_sum DOUBLE,
    as_of         TIMESTAMP
) USING parquet PARTITIONED BY (as_of) LOCATION :bandit_metric_deltas_location;

-- The item catalog (docs/warehouse.md, item_catalog), one whole catalog per catalog load:
-- a load writes the catalog it leaves behind under its batch id, and the committed
-- catalog is the newest catalog batch's (schema/committed_views.spark.sql).
CREATE TABLE IF NOT EXISTS item_catalog (
    namespace       STRING,
    item_id         STRING,
    title           STRING,
    category        STRING,
    price           DOUBLE,
    availability    DOUBLE,
    freshness_index DOUBLE,
    first_seen_at   TIMESTAMP,
    updated_at      TIMESTAMP,
    batch_id        STRING
) USING parquet LOCATION :item_catalog_location;

-- Catalog rows that failed validation, as bandit_rewards_rejected.
CREATE TABLE IF NOT EXISTS item_catalog_rejected (
    raw_hash    STRING,
    raw         STRING,
    reason      STRING,
    source      STRING,
    line_number BIGINT,
    rejected_at TIMESTAMP,
    batch_id    STRING
) USING parquet LOCATION :item_catalog_rejected_location;

-- The candidate pool of each window and surface (pool/candidates.sql): the newest
-- windows' only (KEEP_POOLS in pool.py).
CREATE TABLE IF NOT EXISTS bandit_candidate_pool (
    namespace       STRING,
    item_id         STRING,
    alpha           DOUBLE,
    beta            DOUBLE,
    evidence        DOUBLE,
    price           DOUBLE,
    availability    DOUBLE,
    freshness_index DOUBLE,
    as_of           TIMESTAMP,
    surface         STRING
) USING parquet PARTITIONED BY (as_of, surface) LOCATION :bandit_candidate_pool_location;

-- Every snapshot published to the online store (a rerun's write is a new row; the newest
-- published_at of a version counts).
CREATE TABLE IF NOT EXISTS bandit_publications (
    namespace    STRING,
    surface      STRING,
    version      STRING,
    as_of        TIMESTAMP,
    items        BIGINT,
    published_at TIMESTAMP
) USING parquet LOCATION :bandit_publications_location;

-- Every trip and reset of the kill switch (monitoring/killswitch.py), appended.
CREATE TABLE IF NOT EXISTS bandit_killswitch_events (
    namespace STRING,
    surface   STRING,
    action    STRING,
    reason    STRING,
    figures   STRING,
    actor     STRING,
    at        TIMESTAMP
) USING parquet LOCATION :bandit_killswitch_events_location;

-- The CTR alert's episodes as events (monitoring/alerts.py): each opening, webhook
-- delivery and resolution of an alert is a row, appended; the view bandit_alerts
-- (schema/metric_views.spark.sql) folds them into one row per episode.
CREATE TABLE IF NOT EXISTS bandit_alert_events (
    alert_id            STRING,
    event               STRING COMMENT 'opened, notified or resolved',
    at                  TIMESTAMP,
    kind                STRING,
    namespace           STRING,
    surface             STRING,
    explore_impressions BIGINT,
    explore_ctr         DOUBLE,
    baseline_ctr        DOUBLE,
    details             STRING
) USING parquet LOCATION :bandit_alert_events_location;

-- Every flag set or unset through the product (store_record.set_flag), appended: with the
-- publications and the kill-switch events, what an emptied online store is restored from.
CREATE TABLE IF NOT EXISTS bandit_flag_events (
    namespace STRING,
    name      STRING,
    value     STRING COMMENT 'NULL: unset',
    actor     STRING,
    at        TIMESTAMP
) USING parquet LOCATION :bandit_flag_events_location;
