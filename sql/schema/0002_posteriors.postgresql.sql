-- Posterior pipeline tables (PostgreSQL). Applied by Alembic revision 0002.
-- Meanings and example queries: docs/warehouse.md.

-- Seconds since the Unix epoch as float8: the posterior SQL and the views use it for
-- decay arithmetic (float8 is about 5x faster here than numeric). Inlined by the planner.
CREATE FUNCTION bandit_epoch(ts timestamptz) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN extract(epoch FROM ts)::double precision;

-- One row per materialised 15-minute partition: how it was computed and with what settings.
CREATE TABLE bandit_posterior_runs (
    as_of                 timestamptz      NOT NULL PRIMARY KEY,
    window_start          timestamptz      NOT NULL,
    mode                  text             NOT NULL CHECK (mode IN ('incremental', 'from_scratch')),
    parameters_fingerprint text            NOT NULL,
    prior_alpha           double precision NOT NULL,
    prior_beta            double precision NOT NULL,
    half_life_days        double precision NOT NULL,
    items_touched         bigint           NOT NULL,
    posterior_rows        bigint           NOT NULL,
    impressions           bigint           NOT NULL,
    reward_evidence       double precision NOT NULL,
    computed_at           timestamptz      NOT NULL DEFAULT statement_timestamp()
);

-- Per window and item: what the events that became visible in the window changed.
CREATE TABLE bandit_reward_aggregates (
    as_of               timestamptz      NOT NULL,
    namespace           text             NOT NULL,
    surface             text             NOT NULL,
    item_id             text             NOT NULL,
    impressions         bigint           NOT NULL,
    clicks              bigint           NOT NULL,
    add_to_carts        bigint           NOT NULL,
    purchases           bigint           NOT NULL,
    reward_evidence     double precision NOT NULL,
    non_reward_evidence double precision NOT NULL,
    late_corrections    bigint           NOT NULL,
    PRIMARY KEY (as_of, namespace, surface, item_id)
);

-- Beta posterior of each item whose evidence changed in the window ending at as_of.
CREATE TABLE bandit_posteriors (
    namespace text             NOT NULL,
    surface   text             NOT NULL,
    item_id   text             NOT NULL,
    as_of     timestamptz      NOT NULL,
    alpha     double precision NOT NULL CHECK (alpha > 0),
    beta      double precision NOT NULL CHECK (beta > 0),
    PRIMARY KEY (namespace, surface, item_id, as_of)
);
CREATE INDEX bandit_posteriors_as_of_idx ON bandit_posteriors (as_of);

-- Every item's posterior as of the newest materialised partition, its evidence decayed
-- from its newest row to that time (docs/posterior.md).
CREATE VIEW bandit_posteriors_latest AS
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
        * power(0.5, (bandit_epoch(n.as_of) - bandit_epoch(l.as_of)) / (n.half_life_days * 86400.0))
        AS alpha,
    n.prior_beta + (l.beta - n.prior_beta)
        * power(0.5, (bandit_epoch(n.as_of) - bandit_epoch(l.as_of)) / (n.half_life_days * 86400.0))
        AS beta,
    l.as_of AS last_changed_at
FROM latest_rows AS l, newest AS n;
