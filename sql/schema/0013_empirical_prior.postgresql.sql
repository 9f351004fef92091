-- The prior new items get, per window and (namespace, surface), when BANDIT_PRIOR_MODE is
-- empirical (Alembic revision 0013; docs/posterior.md). Stored posteriors keep the fixed
-- prior of their run (bandit_posterior_runs.prior_alpha/beta) as the base of their
-- evidence; the prior in effect is this row where there is one, the fixed prior else.
CREATE TABLE bandit_priors (
    as_of             timestamptz      NOT NULL,
    namespace         text             NOT NULL,
    surface           text             NOT NULL,
    alpha             double precision NOT NULL CHECK (alpha > 0),
    beta              double precision NOT NULL CHECK (beta > 0),
    method            text             NOT NULL CHECK (method IN ('empirical', 'capped', 'fixed')),
    items             bigint           NOT NULL,
    observed_mean     double precision,
    observed_variance double precision,
    noise_variance    double precision,
    max_strength      double precision NOT NULL,
    min_items         bigint           NOT NULL,
    min_evidence      double precision NOT NULL,
    PRIMARY KEY (as_of, namespace, surface)
);

-- The newest posteriors with the prior in effect at the newest run.
CREATE OR REPLACE VIEW bandit_posteriors_latest AS
WITH newest AS (
    SELECT as_of, prior_alpha, prior_beta, half_life_days
    FROM bandit_posterior_runs
    ORDER BY as_of DESC
    LIMIT 1
),
latest_rows AS (
    SELECT DISTINCT ON (p.namespace, p.surface, p.item_id)
        p.namespace, p.surface, p.item_id, p.as_of, p.alpha, p.beta
    FROM bandit_posteriors AS p, newest AS n
    WHERE p.as_of <= n.as_of
    ORDER BY p.namespace, p.surface, p.item_id, p.as_of DESC
)
SELECT
    n.as_of,
    l.namespace,
    l.surface,
    l.item_id,
    COALESCE(pr.alpha, n.prior_alpha) + (l.alpha - n.prior_alpha)
        * bandit_decay(bandit_epoch(n.as_of) - bandit_epoch(l.as_of), n.half_life_days * 86400.0)
        AS alpha,
    COALESCE(pr.beta, n.prior_beta) + (l.beta - n.prior_beta)
        * bandit_decay(bandit_epoch(n.as_of) - bandit_epoch(l.as_of), n.half_life_days * 86400.0)
        AS beta,
    l.as_of AS last_changed_at
FROM latest_rows AS l
CROSS JOIN newest AS n
LEFT JOIN bandit_priors AS pr
    ON pr.as_of = n.as_of AND pr.namespace = l.namespace AND pr.surface = l.surface;
