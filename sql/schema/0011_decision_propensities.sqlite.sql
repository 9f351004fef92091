-- Off-policy evaluation's record of the logged decisions (SQLite). Same tables as
-- PostgreSQL; see 0011_decision_propensities.postgresql.sql.

CREATE TABLE bandit_decision_snapshots (
    namespace TEXT    NOT NULL,
    surface   TEXT    NOT NULL,
    version   TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    item_id   TEXT    NOT NULL,
    alpha     REAL    NOT NULL,
    beta      REAL    NOT NULL,
    PRIMARY KEY (namespace, surface, version, position)
);

CREATE TABLE bandit_decision_propensities (
    decision_id INTEGER NOT NULL,
    rank        INTEGER NOT NULL,
    slot        INTEGER NOT NULL,
    item_id     TEXT    NOT NULL,
    propensity  REAL,
    error_bound REAL,
    eligible    INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    computed_at TEXT    NOT NULL,
    PRIMARY KEY (decision_id, rank)
);
