-- Session-local staging table for one ingest batch; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS bandit_rewards_stage (
    event_id         text,
    event_type       text,
    occurred_at      timestamptz,
    ingested_at      timestamptz,
    namespace        text,
    surface          text,
    user_id          text,
    request_id       text,
    item_id          text,
    slot             integer,
    explore          boolean,
    bandit_policy_id text,
    experiment       text,
    variant          text
) ON COMMIT DELETE ROWS;
