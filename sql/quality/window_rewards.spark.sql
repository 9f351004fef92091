-- Spark's variant of quality/window_rewards.sql: the same query, reading only the
-- ingested_hour partitions of the window.
-- The rows of bandit_rewards that became visible in one window (the new rows a run
-- sees), reduced in one pass to the distinct values of the columns the suite checks,
-- with how many rows lack each required value. The suite then validates a few hundred
-- rows however large the window: a value is in the window exactly when it is here.
-- timestamps: as_of, window_start
SELECT event_type, surface, variant, slot,
       COUNT(*) AS events,
       SUM(CASE WHEN event_id IS NULL OR occurred_at IS NULL OR ingested_at IS NULL
                  OR namespace IS NULL OR user_id IS NULL OR request_id IS NULL
                  OR item_id IS NULL
                THEN 1 ELSE 0 END) AS rows_missing_a_value
FROM bandit_rewards
WHERE ingested_at >= :window_start AND ingested_at < :as_of
  AND ingested_hour >= date_trunc('HOUR', :window_start) AND ingested_hour < :as_of
GROUP BY event_type, surface, variant, slot;
