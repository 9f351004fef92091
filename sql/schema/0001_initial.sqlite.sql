-- Initial warehouse schema (SQLite, the embedded default). Same tables and meanings as
-- 0001_initial.postgresql.sql. Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS.ffffff', so
-- they sort and compare as text; booleans are 0/1.

CREATE TABLE bandit_rewards (
    event_id         TEXT    NOT NULL PRIMARY KEY,
    event_type       TEXT    NOT NULL
        CHECK (event_type IN ('impression', 'click', 'add_to_cart', 'purchase')),
    occurred_at      TEXT    NOT NULL,
    ingested_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    namespace        TEXT    NOT NULL DEFAULT 'default',
    surface          TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    request_id       TEXT    NOT NULL,
    item_id          TEXT    NOT NULL,
    slot             INTEGER CHECK (slot >= 0),
    explore          INTEGER NOT NULL DEFAULT 0 CHECK (explore IN (0, 1)),
    bandit_policy_id TEXT,
    experiment       TEXT,
    variant          TEXT    CHECK (variant IN ('treatment', 'control'))
) WITHOUT ROWID;

CREATE INDEX bandit_rewards_ingested_at_idx ON bandit_rewards (ingested_at);

CREATE INDEX bandit_rewards_impression_key_idx
    ON bandit_rewards (namespace, surface, request_id, item_id);

CREATE TABLE bandit_rewards_rejected (
    rejected_id INTEGER PRIMARY KEY AUTOINCREMENT,
    raw_hash    TEXT    NOT NULL UNIQUE,
    raw         TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    source      TEXT,
    line_number INTEGER,
    rejected_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

CREATE TABLE item_catalog (
    namespace       TEXT NOT NULL DEFAULT 'default',
    item_id         TEXT NOT NULL,
    title           TEXT,
    category        TEXT,
    price           REAL CHECK (price IS NULL OR price >= 0),
    availability    REAL CHECK (availability IS NULL OR availability BETWEEN 0 AND 1),
    freshness_index REAL CHECK (freshness_index IS NULL OR freshness_index BETWEEN 0 AND 1),
    first_seen_at   TEXT,
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    PRIMARY KEY (namespace, item_id)
);

CREATE TABLE item_catalog_rejected (
    rejected_id INTEGER PRIMARY KEY AUTOINCREMENT,
    raw_hash    TEXT    NOT NULL UNIQUE,
    raw         TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    source      TEXT,
    line_number INTEGER,
    rejected_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);
