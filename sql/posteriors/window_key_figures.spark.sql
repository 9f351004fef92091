-- The window's own rows, one row per impression key: the times and groups that the
-- posterior and the metric rollups need (posteriors/window_keys.sql). The one reduction
-- of a window's rows; every engine's stage of the window's keys but Spark's reads it.
-- Spark SQL's variant: the shared file with the ingestion-hour partition of
-- bandit_rewards named beside every condition on ingested_at, so that Spark reads only
-- the hours it needs (a partition's hour is at most its rows' ingested_at). The tests
-- check that it is the shared file but for its lines on ingested_hour.
-- timestamps: as_of, window_start
SELECT namespace, surface, request_id, item_id,
       MIN(CASE WHEN event_type = 'impression' AND (explore OR :train_all)
                 AND COALESCE(variant, '') <> 'control'
                THEN bandit_epoch(occurred_at) END) AS t_trained,
       MIN(CASE WHEN event_type = 'impression' THEN bandit_epoch(occurred_at) END)
           AS t_impression,
       MIN(CASE WHEN event_type = 'impression' THEN bandit_epoch(ingested_at) END)
           AS ingested_impression,
       MAX(CASE WHEN event_type = 'impression' AND explore THEN 1 ELSE 0 END) AS explore,
       MAX(CASE WHEN event_type = 'impression' THEN COALESCE(experiment, '') END)
           AS experiment,
       MAX(CASE WHEN event_type = 'impression' THEN COALESCE(variant, '') END) AS variant,
       MIN(CASE WHEN event_type = 'click' THEN bandit_epoch(occurred_at) END) AS t_click,
       MIN(CASE WHEN event_type = 'add_to_cart' THEN bandit_epoch(occurred_at) END)
           AS t_add_to_cart,
       MIN(CASE WHEN event_type = 'purchase' THEN bandit_epoch(occurred_at) END)
           AS t_purchase,
       SUM(CASE WHEN event_type = 'click' THEN 1 ELSE 0 END) AS clicks,
       SUM(CASE WHEN event_type = 'add_to_cart' THEN 1 ELSE 0 END) AS add_to_carts,
       SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases
FROM bandit_rewards
WHERE ingested_at >= :window_start AND ingested_at < :as_of
  AND ingested_hour >= date_trunc('HOUR', :window_start) AND ingested_hour < :as_of
GROUP BY namespace, surface, request_id, item_id;
