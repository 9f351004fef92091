-- Impressions ingested before the window but dated after its start (a producer clock
-- ahead of the warehouse) whose key has no row in the window: still growing towards
-- their decay, so the window corrects their posterior evidence too.
-- Spark SQL's variant: the shared file with the ingestion-hour partition of
-- bandit_rewards named beside every condition on ingested_at, so that Spark reads only
-- the hours it needs (a partition's hour is at most its rows' ingested_at). The tests
-- check that it is the shared file but for its lines on ingested_hour.
-- timestamps: as_of, window_start, future_scan_start
SELECT DISTINCT f.namespace, f.surface, f.request_id, f.item_id
FROM bandit_rewards AS f
WHERE f.ingested_at >= :future_scan_start AND f.ingested_at < :window_start
  AND f.ingested_hour >= date_trunc('HOUR', :future_scan_start)
  AND f.ingested_hour < :window_start
  AND f.event_type = 'impression' AND f.occurred_at > :window_start
  AND NOT EXISTS (
      SELECT 1 FROM bandit_rewards AS w
      WHERE w.namespace = f.namespace AND w.surface = f.surface
        AND w.request_id = f.request_id AND w.item_id = f.item_id
        AND w.ingested_at >= :window_start AND w.ingested_at < :as_of
        AND w.ingested_hour >= date_trunc('HOUR', :window_start)
        AND w.ingested_hour < :as_of
  );
