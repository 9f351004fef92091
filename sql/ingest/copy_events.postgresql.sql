-- Copy one batch straight into bandit_rewards (psycopg's COPY ... FROM STDIN), the fast
-- path of an ingest: taken when the batch is expected to hold only new event_ids, inside
-- a savepoint after the merge lock (merge_events.postgresql.sql). A known event_id makes
-- the COPY fail on the primary key; the batch is then rolled back to the savepoint and
-- merged instead, so each event still lands once. ingested_at is left out: its default,
-- the statement's time, is the warehouse's clock.
COPY bandit_rewards (
    event_id, event_type, occurred_at, namespace, surface, user_id, request_id, item_id,
    slot, explore, bandit_policy_id, experiment, variant
) FROM STDIN;

-- The same for a historical import, which carries each event's ingested_at.
COPY bandit_rewards (
    event_id, event_type, occurred_at, ingested_at, namespace, surface, user_id,
    request_id, item_id, slot, explore, bandit_policy_id, experiment, variant
) FROM STDIN;
