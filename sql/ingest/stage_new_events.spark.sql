-- The events of one ingest batch (the session's temporary view bandit_rewards_batch,
-- warehouse/spark_ingest.py, in arrival order: ordinal) that the lake does not hold yet:
-- the first row of each event_id in the batch, unless a committed batch holds that
-- event_id ingested at or after :horizon_start. The lake has no unique index; this
-- anti-join against the dedup horizon is what keeps an event once (docs/spark.md).
-- ingested_at is the time the batch was accepted, unless a historical import gives one.
-- timestamps: accepted_at, horizon_start
SELECT s.event_id, s.event_type, s.occurred_at, s.ingested_at, s.namespace, s.surface,
       s.user_id, s.request_id, s.item_id, s.slot, s.explore, s.bandit_policy_id,
       s.experiment, s.variant
FROM (
    SELECT b.*,
           COALESCE(b.ingested_at_given, :accepted_at) AS ingested_at,
           ROW_NUMBER() OVER (PARTITION BY b.event_id ORDER BY b.ordinal) AS nth
    FROM bandit_rewards_batch AS b
) AS s
WHERE s.nth = 1
  AND NOT EXISTS (
      SELECT 1 FROM bandit_rewards AS r
      WHERE r.event_id = s.event_id
        AND r.ingested_hour >= date_trunc('HOUR', :horizon_start)
        AND r.ingested_at >= :horizon_start
  )
