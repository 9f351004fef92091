-- One row per impression key that the window [window_start, as_of) touches: Spark SQL's
-- variant of posteriors/window_keys.sql, the same query with the ingestion-hour partition
-- of bandit_rewards named beside every condition on ingested_at, so that Spark reads the
-- window's hours only (a partition's hour is at most its rows' ingested_at). The rows of
-- touched keys ingested before the window (earlier_keys) are looked for in every earlier
-- hour: without an index, that is a scan of the key columns of the whole history
-- (docs/spark.md). Read the shared file for what each part computes; the tests check
-- that this file is the shared one but for its lines on ingested_hour.
-- timestamps: as_of, window_start, future_scan_start
WITH window_keys AS (
    -- The window's own rows, one row per impression key.
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
    GROUP BY namespace, surface, request_id, item_id
),
future_keys AS (
    -- Impressions ingested before the window but dated after its start (a producer clock
    -- ahead of the warehouse) whose key has no row in the window: still growing towards
    -- their decay, so the window corrects their posterior evidence too.
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
      )
),
touched_keys AS (
    SELECT namespace, surface, request_id, item_id FROM window_keys
    UNION ALL
    SELECT namespace, surface, request_id, item_id FROM future_keys
),
earlier_keys AS (
    -- The same figures over the rows of touched keys ingested before the window.
    SELECT e.namespace, e.surface, e.request_id, e.item_id,
           MIN(CASE WHEN e.event_type = 'impression' AND (e.explore OR :train_all)
                     AND COALESCE(e.variant, '') <> 'control'
                    THEN bandit_epoch(e.occurred_at) END) AS t_trained,
           MIN(CASE WHEN e.event_type = 'impression' THEN bandit_epoch(e.occurred_at) END)
               AS t_impression,
           MIN(CASE WHEN e.event_type = 'impression' THEN bandit_epoch(e.ingested_at) END)
               AS ingested_impression,
           MAX(CASE WHEN e.event_type = 'impression' AND e.explore THEN 1 ELSE 0 END)
               AS explore,
           MAX(CASE WHEN e.event_type = 'impression' THEN COALESCE(e.experiment, '') END)
               AS experiment,
           MAX(CASE WHEN e.event_type = 'impression' THEN COALESCE(e.variant, '') END)
               AS variant,
           MIN(CASE WHEN e.event_type = 'click' THEN bandit_epoch(e.occurred_at) END)
               AS t_click,
           MIN(CASE WHEN e.event_type = 'add_to_cart' THEN bandit_epoch(e.occurred_at) END)
               AS t_add_to_cart,
           MIN(CASE WHEN e.event_type = 'purchase' THEN bandit_epoch(e.occurred_at) END)
               AS t_purchase
    FROM touched_keys AS k
    JOIN bandit_rewards AS e
      ON e.namespace = k.namespace AND e.surface = k.surface
     AND e.request_id = k.request_id AND e.item_id = k.item_id
     AND e.ingested_at < :window_start
     AND e.ingested_hour < :window_start
    GROUP BY e.namespace, e.surface, e.request_id, e.item_id
)
SELECT COALESCE(w.namespace, o.namespace) AS namespace,
       COALESCE(w.surface, o.surface) AS surface,
       COALESCE(w.item_id, o.item_id) AS item_id,
       COALESCE(w.request_id, o.request_id) AS request_id,
       w.namespace IS NOT NULL AS in_window,
       LEAST(w.t_trained, o.t_trained) AS t_trained_new,
       o.t_trained AS t_trained_old,
       LEAST(w.t_impression, o.t_impression) AS t_new,
       o.t_impression AS t_old,
       LEAST(w.ingested_impression, o.ingested_impression) AS window_new,
       o.ingested_impression AS window_old,
       GREATEST(w.explore, o.explore) AS explore_new,
       o.explore AS explore_old,
       GREATEST(w.experiment, o.experiment) AS experiment_new,
       o.experiment AS experiment_old,
       GREATEST(w.variant, o.variant) AS variant_new,
       o.variant AS variant_old,
       LEAST(w.t_click, o.t_click) AS click_new,
       LEAST(w.t_add_to_cart, o.t_add_to_cart) AS add_to_cart_new,
       LEAST(w.t_purchase, o.t_purchase) AS purchase_new,
       o.t_click AS click_old,
       o.t_add_to_cart AS add_to_cart_old,
       o.t_purchase AS purchase_old,
       COALESCE(w.clicks, 0) AS clicks,
       COALESCE(w.add_to_carts, 0) AS add_to_carts,
       COALESCE(w.purchases, 0) AS purchases
FROM window_keys AS w
FULL JOIN earlier_keys AS o
  ON o.namespace = w.namespace AND o.surface = w.surface
 AND o.request_id = w.request_id AND o.item_id = w.item_id
WHERE LEAST(w.t_trained, o.t_trained) IS NOT NULL
   OR (w.namespace IS NOT NULL AND LEAST(w.t_impression, o.t_impression) IS NOT NULL)
