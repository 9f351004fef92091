-- The exploration candidate pool (PostgreSQL). Applied by Alembic revision 0003.
-- Only the pools of the newest windows are kept (see docs/warehouse.md).
CREATE TABLE bandit_candidate_pool (
    as_of     timestamptz      NOT NULL,
    namespace text             NOT NULL,
    surface   text             NOT NULL,
    item_id   text             NOT NULL,
    alpha     double precision NOT NULL,
    beta      double precision NOT NULL,
    evidence  double precision NOT NULL,
    PRIMARY KEY (as_of, namespace, surface, item_id)
);
