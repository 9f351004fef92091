-- The impression keys of one window, kept for the rest of the transaction: PostgreSQL's
-- variant of posteriors/stage_window_keys.sql. It stores the same rows as
-- posteriors/window_keys.sql, built from the same parts, and the tests hold the two to
-- each other. The aggregates (posteriors/window_evidence.postgresql.sql) and the metric
-- deltas (metrics/window_deltas.sql) are both read from it, so the window's rows are
-- reduced once. A from-scratch posterior stages it again over the look-back horizon.
--
-- How it differs, for speed (docs/performance.md):
-- - The window's own keys are written straight into the table, then the few future-dated
--   keys, and the keys with rows ingested before the window (late outcomes, re-sent
--   impressions) are merged in by an update. The shared query instead keeps the window's
--   keys to read them twice and joins them in full to the earlier figures.
-- - No order is kept: sorting a busy window's keys cost more than reducing them, and the
--   evidence sums over them are exact, so a rerun's sums equal a clean run's to the last
--   bit whatever order its plan reads the keys in.
-- - The table is analysed once its keys are in: a new temporary table has no statistics,
--   and without them the planner guessed a seventh of its rows and sorted on disk where
--   a hash aggregate fits in memory.
-- timestamps: as_of, window_start, future_scan_start
DROP TABLE IF EXISTS bandit_window_keys;

CREATE TEMP TABLE bandit_window_keys AS
SELECT w.namespace, w.surface, w.item_id, w.request_id, TRUE AS in_window,
       w.t_trained AS t_trained_new, NULL::float8 AS t_trained_old,
       w.t_impression AS t_new, NULL::float8 AS t_old,
       w.ingested_impression AS window_new, NULL::float8 AS window_old,
       w.explore AS explore_new, NULL::int AS explore_old,
       w.experiment AS experiment_new, NULL::text AS experiment_old,
       w.variant AS variant_new, NULL::text AS variant_old,
       w.t_click AS click_new, w.t_add_to_cart AS add_to_cart_new,
       w.t_purchase AS purchase_new,
       NULL::float8 AS click_old, NULL::float8 AS add_to_cart_old,
       NULL::float8 AS purchase_old,
       w.clicks, w.add_to_carts, w.purchases
FROM ({{ include posteriors/window_key_figures }}) AS w;

INSERT INTO bandit_window_keys (namespace, surface, item_id, request_id, in_window,
                                clicks, add_to_carts, purchases)
SELECT f.namespace, f.surface, f.item_id, f.request_id, FALSE, 0, 0, 0
FROM ({{ include posteriors/future_keys }}) AS f;

ANALYZE bandit_window_keys;

-- The keys with earlier rows: the earlier figures become the _old columns and are merged
-- into the _new ones (LEAST and GREATEST skip a NULL, as the shared query's do).
UPDATE bandit_window_keys AS k
SET t_trained_new = LEAST(k.t_trained_new, o.t_trained), t_trained_old = o.t_trained,
    t_new = LEAST(k.t_new, o.t_impression), t_old = o.t_impression,
    window_new = LEAST(k.window_new, o.ingested_impression),
    window_old = o.ingested_impression,
    explore_new = GREATEST(k.explore_new, o.explore), explore_old = o.explore,
    experiment_new = GREATEST(k.experiment_new, o.experiment),
    experiment_old = o.experiment,
    variant_new = GREATEST(k.variant_new, o.variant), variant_old = o.variant,
    click_new = LEAST(k.click_new, o.t_click),
    add_to_cart_new = LEAST(k.add_to_cart_new, o.t_add_to_cart),
    purchase_new = LEAST(k.purchase_new, o.t_purchase),
    click_old = o.t_click, add_to_cart_old = o.t_add_to_cart, purchase_old = o.t_purchase
FROM (
    WITH touched_keys AS (
        SELECT namespace, surface, request_id, item_id FROM bandit_window_keys
    )
    {{ include posteriors/earlier_key_figures }}
) AS o
WHERE o.namespace = k.namespace AND o.surface = k.surface
  AND o.request_id = k.request_id AND o.item_id = k.item_id;

-- The shared query's condition on its rows: a key counts if it has a trained impression,
-- or, for a key with rows in the window, any impression.
DELETE FROM bandit_window_keys
WHERE t_trained_new IS NULL AND (NOT in_window OR t_new IS NULL);
