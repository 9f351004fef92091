-- Impressions ingested before the window but dated after its start (a producer clock
-- ahead of the warehouse) whose key has no row in the window: still growing towards
-- their decay, so the window corrects their posterior evidence too.
-- timestamps: as_of, window_start, future_scan_start
SELECT DISTINCT f.namespace, f.surface, f.request_id, f.item_id
FROM bandit_rewards AS f
WHERE f.ingested_at >= :future_scan_start AND f.ingested_at < :window_start
  AND f.event_type = 'impression' AND f.occurred_at > :window_start
  AND NOT EXISTS (
      SELECT 1 FROM bandit_rewards AS w
      WHERE w.namespace = f.namespace AND w.surface = f.surface
        AND w.request_id = f.request_id AND w.item_id = f.item_id
        AND w.ingested_at >= :window_start AND w.ingested_at < :as_of
  );
