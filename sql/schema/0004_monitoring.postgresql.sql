-- Metric rollups, alerts and the kill switch (PostgreSQL). Alembic revision 0004.

-- Wall-clock seconds back to a timestamp (the inverse of bandit_epoch).
CREATE FUNCTION bandit_timestamp(seconds double precision) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN to_timestamp(seconds);

-- What each run (as_of) changed in each impression window and group; the metric views
-- add these up, so a rerun of a partition replaces its contribution.
CREATE TABLE bandit_metric_deltas (
    as_of         timestamptz      NOT NULL,
    window_start  timestamptz      NOT NULL,
    namespace     text             NOT NULL,
    surface       text             NOT NULL,
    experiment    text             NOT NULL DEFAULT '',
    variant       text             NOT NULL DEFAULT '',
    explore       smallint         NOT NULL CHECK (explore IN (0, 1)),
    impressions   bigint           NOT NULL,
    clicked       bigint           NOT NULL,
    carted        bigint           NOT NULL,
    purchased     bigint           NOT NULL,
    reward_sum    double precision NOT NULL,
    reward_sq_sum double precision NOT NULL,
    PRIMARY KEY (as_of, window_start, namespace, surface, experiment, variant, explore)
);
CREATE INDEX bandit_metric_deltas_window_idx ON bandit_metric_deltas (window_start);

-- The configured holdout of each experiment, recorded by every run (for the SRM check).
CREATE TABLE bandit_experiments (
    experiment      text             NOT NULL PRIMARY KEY,
    holdout_percent double precision NOT NULL,
    updated_at      timestamptz      NOT NULL DEFAULT statement_timestamp()
);

-- One row per alert episode: opened when exploration CTR stays below the threshold share
-- of baseline CTR for an hour, resolved when it recovers.
CREATE TABLE bandit_alerts (
    alert_id            bigserial        PRIMARY KEY,
    kind                text             NOT NULL,
    namespace           text             NOT NULL,
    surface             text             NOT NULL,
    opened_at           timestamptz      NOT NULL,
    resolved_at         timestamptz,
    explore_impressions bigint           NOT NULL,
    explore_ctr         double precision,
    baseline_ctr        double precision,
    details             text             NOT NULL,
    notified_at         timestamptz
);
CREATE UNIQUE INDEX bandit_alerts_one_open_idx
    ON bandit_alerts (kind, namespace, surface) WHERE resolved_at IS NULL;

-- Every trip and reset of the kill switch, with its reason and figures.
CREATE TABLE bandit_killswitch_events (
    event_id   bigserial   PRIMARY KEY,
    namespace  text        NOT NULL,
    surface    text        NOT NULL,
    action     text        NOT NULL CHECK (action IN ('trip', 'reset')),
    reason     text        NOT NULL,
    figures    text        NOT NULL,
    actor      text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT statement_timestamp()
);
