-- The prior new items get, per window and (namespace, surface), when BANDIT_PRIOR_MODE is
-- empirical (Alembic revision 0013; docs/posterior.md). Stored posteriors keep the fixed
-- prior of their run (bandit_posterior_runs.prior_alpha/beta) as the base of their
-- evidence; the prior in effect is this row where there is one, the fixed prior else.
CREATE TABLE bandit_priors (
    as_of             TEXT    NOT NULL,
    namespace         TEXT    NOT NULL,
    surface           TEXT    NOT NULL,
    alpha             REAL    NOT NULL CHECK (alpha > 0),
    beta              REAL    NOT NULL CHECK (beta > 0),
    method            TEXT    NOT NULL CHECK (method IN ('empirical', 'capped', 'fixed')),
    items             INTEGER NOT NULL,
    observed_mean     REAL,
    observed_variance REAL,
    noise_variance    REAL,
    max_strength      REAL    NOT NULL,
    min_items         INTEGER NOT NULL,
    min_evidence      REAL    NOT NULL,
    PRIMARY KEY (as_of, namespace, surface)
);

-- The newest posteriors with the prior in effect at the newest run (julianday keeps the
-- view usable from the sqlite3 shell).
DROP VIEW bandit_posteriors_latest;

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
    COALESCE(pr.alpha, n.prior_alpha) + (p.alpha - n.prior_alpha)
        * power(0.5, (julianday(n.as_of) - julianday(p.as_of)) / n.half_life_days) AS alpha,
    COALESCE(pr.beta, n.prior_beta) + (p.beta - n.prior_beta)
        * power(0.5, (julianday(n.as_of) - julianday(p.as_of)) / n.half_life_days) AS beta,
    p.as_of AS last_changed_at
FROM latest_rows AS l
JOIN bandit_posteriors AS p
    ON p.namespace = l.namespace AND p.surface = l.surface AND p.item_id = l.item_id
   AND p.as_of = l.as_of
CROSS JOIN newest AS n
LEFT JOIN bandit_priors AS pr
    ON pr.as_of = n.as_of AND pr.namespace = p.namespace AND pr.surface = p.surface;
