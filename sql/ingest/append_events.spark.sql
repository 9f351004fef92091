-- Append one batch of validated events to bandit_rewards (Spark), each into the partition
-- of its ingestion hour. The batch is the session's temporary view bandit_rewards_batch
-- (warehouse/spark.py), in arrival order (ordinal). An event_id already stored, or
-- repeated earlier in the batch, is skipped; this holds for one writer at a time only:
-- the lake has no unique index, so two loads racing with the same events can both
-- append them (docs/spark.md). ingested_at is the statement's time unless a historical
-- import passes one.
INSERT INTO bandit_rewards PARTITION (ingested_hour)
SELECT event_id, event_type, occurred_at, ingested_at, namespace, surface, user_id,
       request_id, item_id, slot, explore, bandit_policy_id, experiment, variant,
       date_trunc('HOUR', ingested_at)
FROM (
    SELECT b.*,
           COALESCE(b.ingested_at_given, current_timestamp()) AS ingested_at,
           ROW_NUMBER() OVER (PARTITION BY b.event_id ORDER BY b.ordinal) AS nth
    FROM bandit_rewards_batch AS b
) AS s
WHERE s.nth = 1
  AND NOT EXISTS (SELECT 1 FROM bandit_rewards AS r WHERE r.event_id = s.event_id);
