-- One row per impression key that the window [window_start, as_of) touches: a row of it
-- arrived in the window (in_window), or it is an impression dated after window_start
-- that was ingested before the window and so was not yet decaying. For each key, the
-- times and groups that the posterior (posteriors/window_evidence.sql) and the metric
-- rollups (metrics/window_deltas.sql) need, with everything visible now (_new: the
-- window's rows and the earlier ones) and with what was visible before the window (_old:
-- the earlier ones only).
--
-- How it stays close to one pass over the window (docs/performance.md): a key needs only
-- the earliest impression (trained, and any), the earliest outcome of each type and the
-- impression's group, so the window's rows are reduced to one row per key in a single
-- GROUP BY, and rows ingested before the window are read only for the keys that have
-- some: the index (namespace, surface, request_id, item_id, ingested_at) answers "any
-- earlier row?" for a key without touching the table, so late outcomes cost in
-- proportion to their number. An outcome counts when occurred_at <= t + attribution, so
-- "the largest weight among the outcomes in the attribution window" is the largest weight
-- whose earliest outcome is in it.
--
-- materialise_window stages this once per window (posteriors/stage_window_keys.sql), and
-- both the aggregates and the metric deltas are read from it.
-- timestamps: as_of, window_start, future_scan_start
WITH window_keys AS (
    {{ include posteriors/window_key_figures }}
),
future_keys AS (
    {{ include posteriors/future_keys }}
),
touched_keys AS (
    SELECT namespace, surface, request_id, item_id FROM window_keys
    UNION ALL
    SELECT namespace, surface, request_id, item_id FROM future_keys
),
earlier_keys AS (
    {{ include posteriors/earlier_key_figures }}
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
