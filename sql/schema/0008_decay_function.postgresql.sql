-- The decay of evidence with age, written once: 0.5 ** (elapsed / half-life), and 1 for
-- evidence dated at or after the moment it is decayed to (it never grows). Every
-- statement under sql/ that decays evidence calls it. LANGUAGE sql and IMMUTABLE, so the
-- planner inlines it: it costs what the expression it replaces cost.
CREATE FUNCTION bandit_decay(elapsed_seconds double precision, half_life_seconds double precision)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN elapsed_seconds <= 0 THEN 1.0
                ELSE power(0.5, elapsed_seconds / half_life_seconds) END;

-- The view of the newest posteriors, unchanged but for calling the one decay.
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
    n.prior_alpha + (l.alpha - n.prior_alpha)
        * bandit_decay(bandit_epoch(n.as_of) - bandit_epoch(l.as_of), n.half_life_days * 86400.0)
        AS alpha,
    n.prior_beta + (l.beta - n.prior_beta)
        * bandit_decay(bandit_epoch(n.as_of) - bandit_epoch(l.as_of), n.half_life_days * 86400.0)
        AS beta,
    l.as_of AS last_changed_at
FROM latest_rows AS l, newest AS n;
