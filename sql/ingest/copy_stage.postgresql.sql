-- Copy one batch into the session's staging table (stage_events.postgresql.sql), the
-- path of a batch that holds known event_ids; merge_events.postgresql.sql then moves its
-- new events into bandit_rewards. The columns are those of copy_events.postgresql.sql:
-- a live ingest leaves ingested_at out (NULL here, and the merge stamps the warehouse's
-- clock).
COPY bandit_rewards_stage (
    event_id, event_type, occurred_at, namespace, surface, user_id, request_id, item_id,
    slot, explore, bandit_policy_id, experiment, variant
) FROM STDIN;

-- The same for a historical import, which carries each event's ingested_at.
COPY bandit_rewards_stage (
    event_id, event_type, occurred_at, ingested_at, namespace, surface, user_id,
    request_id, item_id, slot, explore, bandit_policy_id, experiment, variant
) FROM STDIN;
