-- Metric rollups, alerts and the kill switch (SQLite). Same tables as PostgreSQL;
-- bandit_timestamp(), ln(), exp(), sqrt() and floor() are registered by the pipeline.

CREATE TABLE bandit_metric_deltas (
    as_of         TEXT    NOT NULL,
    window_start  TEXT    NOT NULL,
    namespace     TEXT    NOT NULL,
    surface       TEXT    NOT NULL,
    experiment    TEXT    NOT NULL DEFAULT '',
    variant       TEXT    NOT NULL DEFAULT '',
    explore       INTEGER NOT NULL CHECK (explore IN (0, 1)),
    impressions   INTEGER NOT NULL,
    clicked       INTEGER NOT NULL,
    carted        INTEGER NOT NULL,
    purchased     INTEGER NOT NULL,
    reward_sum    REAL    NOT NULL,
    reward_sq_sum REAL    NOT NULL,
    PRIMARY KEY (as_of, window_start, namespace, surface, experiment, variant, explore)
);
CREATE INDEX bandit_metric_deltas_window_idx ON bandit_metric_deltas (window_start);

CREATE TABLE bandit_experiments (
    experiment      TEXT NOT NULL PRIMARY KEY,
    holdout_percent REAL NOT NULL,
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

CREATE TABLE bandit_alerts (
    alert_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                TEXT    NOT NULL,
    namespace           TEXT    NOT NULL,
    surface             TEXT    NOT NULL,
    opened_at           TEXT    NOT NULL,
    resolved_at         TEXT,
    explore_impressions INTEGER NOT NULL,
    explore_ctr         REAL,
    baseline_ctr        REAL,
    details             TEXT    NOT NULL,
    notified_at         TEXT
);
CREATE UNIQUE INDEX bandit_alerts_one_open_idx
    ON bandit_alerts (kind, namespace, surface) WHERE resolved_at IS NULL;

CREATE TABLE bandit_killswitch_events (
    event_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    surface   TEXT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN ('trip', 'reset')),
    reason    TEXT NOT NULL,
    figures   TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);
