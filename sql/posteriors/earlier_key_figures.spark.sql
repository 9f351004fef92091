-- The figures of posteriors/window_key_figures.sql over the rows ingested before the
-- window, for the keys of touched_keys, which the including statement defines (the
-- window's keys and its future-dated ones). The index (namespace, surface, request_id,
-- item_id, ingested_at) answers it with one probe per key, without touching the table
-- for the many keys that have no earlier row.
-- Spark SQL's variant: the shared file with the ingestion-hour partition of
-- bandit_rewards named beside every condition on ingested_at, so that Spark reads only
-- the hours it needs (a partition's hour is at most its rows' ingested_at). The tests
-- check that it is the shared file but for its lines on ingested_hour.
-- Without an index, the earlier rows of the touched keys are a scan of the key
-- columns of every earlier hour (docs/spark.md).
-- timestamps: window_start
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
GROUP BY e.namespace, e.surface, e.request_id, e.item_id;
