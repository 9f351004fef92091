-- The SQLite online store (embedded default); created on first use, idempotent.
-- Timestamps are Unix epoch seconds.
CREATE TABLE IF NOT EXISTS snapshots (
    namespace    TEXT NOT NULL,
    surface      TEXT NOT NULL,
    version      TEXT NOT NULL,
    published_at REAL NOT NULL,
    replaced_at  REAL,
    blob         BLOB NOT NULL,
    PRIMARY KEY (namespace, surface, version)
);
CREATE TABLE IF NOT EXISTS current_snapshot (
    namespace TEXT NOT NULL,
    surface   TEXT NOT NULL,
    version   TEXT NOT NULL,
    PRIMARY KEY (namespace, surface)
);
CREATE TABLE IF NOT EXISTS flags (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS killswitch (
    namespace TEXT NOT NULL,
    surface   TEXT NOT NULL,
    state     TEXT NOT NULL,
    PRIMARY KEY (namespace, surface)
);
-- When each namespace was last seeded from the warehouse's record (the restore marker).
CREATE TABLE IF NOT EXISTS restore_marker (
    namespace   TEXT NOT NULL PRIMARY KEY,
    restored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS exposures (
    namespace  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    exposed_at REAL NOT NULL,
    PRIMARY KEY (namespace, user_id, item_id)
);
-- Trimming drops every user's entries older than the hour, by time.
CREATE INDEX IF NOT EXISTS exposures_by_time ON exposures (exposed_at);
