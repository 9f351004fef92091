-- The warehouse's record of what the online store holds (Alembic revision 0009): an
-- emptied store (a Redis restarted without persistence) is restored from it.

-- Every flag set or unset through the product (`bandit-pipeline flags set/unset`);
-- value NULL is an unset. The newest row per (namespace, name) is the flag's value.
CREATE TABLE bandit_flag_events (
    event_id  bigserial   PRIMARY KEY,
    namespace text        NOT NULL,
    name      text        NOT NULL,
    value     text,
    actor     text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT statement_timestamp()
);
CREATE INDEX bandit_flag_events_name_idx ON bandit_flag_events (namespace, name, event_id);

-- Every snapshot version written to the online store, per (namespace, surface): the
-- window it was built for (its pool in bandit_candidate_pool), how many items it held,
-- and when it was last written (a restore writes it again).
CREATE TABLE bandit_publications (
    namespace    text        NOT NULL,
    surface      text        NOT NULL,
    version      text        NOT NULL,
    as_of        timestamptz NOT NULL,
    items        integer     NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (namespace, surface, version)
);
