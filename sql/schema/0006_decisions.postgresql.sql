-- Serving decision traces, appended in batches when BANDIT_DECISIONS_TABLE is on
-- (Alembic revision 0006). One row per decision; JSON text for the lists.
CREATE TABLE bandit_decisions (
    decision_id      bigserial PRIMARY KEY,
    decided_at       timestamptz NOT NULL,
    namespace        TEXT NOT NULL,
    surface          TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    explored         boolean NOT NULL,
    reason           TEXT NOT NULL,
    policy_id        TEXT NOT NULL,
    experiment       TEXT,
    variant          TEXT,
    snapshot_version TEXT,
    seed             bigint,
    explore_slots    TEXT NOT NULL,
    chosen           TEXT NOT NULL,
    scores           TEXT NOT NULL,
    eligible         INTEGER NOT NULL,
    skipped_recent   TEXT NOT NULL,
    detail           TEXT,
    logged_at        timestamptz NOT NULL DEFAULT statement_timestamp()
);
CREATE INDEX bandit_decisions_decided_at_idx ON bandit_decisions (decided_at);
