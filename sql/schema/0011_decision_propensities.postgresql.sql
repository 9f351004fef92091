-- Off-policy evaluation's record of the logged decisions (Alembic revision 0011), filled
-- by `bandit-pipeline propensities update` (docs/data-science.md).

-- The snapshot each recorded decision drew from, copied from bandit_candidate_pool before
-- the job prunes it (pools are kept for two hours): per (namespace, surface, version) the
-- candidates in snapshot order with their posteriors.
CREATE TABLE bandit_decision_snapshots (
    namespace text             NOT NULL,
    surface   text             NOT NULL,
    version   text             NOT NULL,
    position  integer          NOT NULL,
    item_id   text             NOT NULL,
    alpha     double precision NOT NULL,
    beta      double precision NOT NULL,
    PRIMARY KEY (namespace, surface, version, position)
);

-- Per explored decision (bandit_decisions.decision_id) and exploration slot (rank 0 is the
-- first): the chosen item and the probability that the served policy put it in that slot,
-- with a bound on the error of that number. status 'ok', or why there is no propensity:
-- 'snapshot_missing' (its pool was pruned before it was copied) or 'replay_mismatch' (the
-- seed does not reproduce the choice from the snapshot: explicit candidates, or a
-- snapshot that changed).
CREATE TABLE bandit_decision_propensities (
    decision_id bigint           NOT NULL,
    rank        integer          NOT NULL,
    slot        integer          NOT NULL,
    item_id     text             NOT NULL,
    propensity  double precision,
    error_bound double precision,
    eligible    integer          NOT NULL,
    status      text             NOT NULL,
    computed_at timestamptz      NOT NULL,
    PRIMARY KEY (decision_id, rank)
);
