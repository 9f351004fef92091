-- The exploration candidate pool (SQLite). Same table as the PostgreSQL variant.
CREATE TABLE bandit_candidate_pool (
    as_of     TEXT NOT NULL,
    namespace TEXT NOT NULL,
    surface   TEXT NOT NULL,
    item_id   TEXT NOT NULL,
    alpha     REAL NOT NULL,
    beta      REAL NOT NULL,
    evidence  REAL NOT NULL,
    PRIMARY KEY (as_of, namespace, surface, item_id)
);
