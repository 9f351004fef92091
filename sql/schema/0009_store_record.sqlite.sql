-- The warehouse's record of what the online store holds (SQLite). Same tables as
-- PostgreSQL; see 0009_store_record.postgresql.sql.

CREATE TABLE bandit_flag_events (
    event_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);
CREATE INDEX bandit_flag_events_name_idx ON bandit_flag_events (namespace, name, event_id);

CREATE TABLE bandit_publications (
    namespace    TEXT    NOT NULL,
    surface      TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    as_of        TEXT    NOT NULL,
    items        INTEGER NOT NULL,
    published_at TEXT    NOT NULL,
    PRIMARY KEY (namespace, surface, version)
);
