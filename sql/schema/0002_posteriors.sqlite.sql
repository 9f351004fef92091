-- Posterior pipeline tables (SQLite). Same tables as 0002_posteriors.postgresql.sql.
-- bandit_epoch(text) is registered by the pipeline on every connection.

CREATE TABLE bandit_posterior_runs (
    as_of                  TEXT    NOT NULL PRIMARY KEY,
    window_start           TEXT    NOT NULL,
    mode                   TEXT    NOT NULL CHECK (mode IN ('incremental', 'from_scratch')),
    parameters_fingerprint TEXT    NOT NULL,
    prior_alpha            REAL    NOT NULL,
    prior_beta             REAL    NOT NULL,
    half_life_days         REAL    NOT NULL,
    items_touched          INTEGER NOT NULL,
    posterior_rows         INTEGER NOT NULL,
    impressions            INTEGER NOT NULL,
    reward_evidence        REAL    NOT NULL,
    computed_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

CREATE TABLE bandit_reward_aggregates (
    as_of               TEXT    NOT NULL,
    namespace           TEXT    NOT NULL,
    surface             TEXT    NOT NULL,
    item_id             TEXT    NOT NULL,
    impressions         INTEGER NOT NULL,
    clicks              INTEGER NOT NULL,
    add_to_carts        INTEGER NOT NULL,
    purchases           INTEGER NOT NULL,
    reward_evidence     REAL    NOT NULL,
    non_reward_evidence REAL    NOT NULL,
    late_corrections    INTEGER NOT NULL,
    PRIMARY KEY (as_of, namespace, surface, item_id)
);

CREATE TABLE bandit_posteriors (
    namespace TEXT NOT NULL,
    surface   TEXT NOT NULL,
    item_id   TEXT NOT NULL,
    as_of     TEXT NOT NULL,
    alpha     REAL NOT NULL CHECK (alpha > 0),
    beta      REAL NOT NULL CHECK (beta > 0),
    PRIMARY KEY (namespace, surface, item_id, as_of)
);
CREATE INDEX bandit_posteriors_as_of_idx ON bandit_posteriors (as_of);

-- julianday keeps the view usable from the sqlite3 shell (precision ~50 us, ample for decay).
CREATE VIEW bandit_posteriors_latest AS
WITH newest AS (
    SELECT as_of, prior_alpha, prior_beta, half_life_days
    FROM bandit_posterior_runs
    ORDER BY as_of DESC
    LIMIT 1
),
latest_rows AS (
    SELECT p.namespace, p.surface, p.item_id, MAX(p.as_of) AS as_of
    FROM bandit_posteriors AS p, newest AS n
    WHERE p.as_of <= n.as_of
    GROUP BY p.namespace, p.surface, p.item_id
)
SELECT
    n.as_of,
    p.namespace,
    p.surface,
    p.item_id,
    n.prior_alpha + (p.alpha - n.prior_alpha)
        * power(0.5, (julianday(n.as_of) - julianday(p.as_of)) / n.half_life_days) AS alpha,
    n.prior_beta + (p.beta - n.prior_beta)
        * power(0.5, (julianday(n.as_of) - julianday(p.as_of)) / n.half_life_days) AS beta,
    p.as_of AS last_changed_at
FROM latest_rows AS l
JOIN bandit_posteriors AS p
    ON p.namespace = l.namespace AND p.surface = l.surface AND p.item_id = l.item_id
   AND p.as_of = l.as_of
CROSS JOIN newest AS n;
