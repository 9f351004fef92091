-- What the events that became visible in [window_start, as_of) change in the metric
-- rollups, per impression window and group.
--
-- An impression (the key namespace, surface, request_id, item_id) belongs to the
-- 15-minute window in which its first row was ingested, and to the group (explore,
-- experiment, variant) of its rows. Its outcomes count within the attribution window
-- after its earliest occurred_at, so a late click changes the window its impression
-- belongs to. For every key the run touches, this query computes the impression's
-- figures with everything visible now minus those with what was visible before the
-- run's window; bandit_explore_metrics adds the differences up.
--
-- As in posteriors/window_evidence.sql, the window's rows are reduced to one row per key
-- in one pass, and rows ingested before the window are read, through the index that ends
-- with ingested_at, only for the keys that have some (docs/performance.md). An outcome
-- counts when its occurred_at is within the attribution window of t, so each outcome type
-- needs only its earliest occurred_at.
-- timestamps: as_of, window_start
WITH window_keys AS (
    -- The window's own rows, one row per impression key.
    SELECT namespace, surface, request_id, item_id,
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
               AS t_purchase
    FROM bandit_rewards
    WHERE ingested_at >= :window_start AND ingested_at < :as_of
    GROUP BY namespace, surface, request_id, item_id
),
earlier_keys AS (
    -- The same figures over the rows of those keys ingested before the window.
    SELECT e.namespace, e.surface, e.request_id, e.item_id,
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
    FROM window_keys AS k
    JOIN bandit_rewards AS e
      ON e.namespace = k.namespace AND e.surface = k.surface
     AND e.request_id = k.request_id AND e.item_id = k.item_id
     AND e.ingested_at < :window_start
    GROUP BY e.namespace, e.surface, e.request_id, e.item_id
),
keyed AS (
    -- Per key, with everything visible now (_new) and with what was visible before the
    -- run's window (_old): the impression's time, its window and group, and the earliest
    -- outcome of each type.
    SELECT w.namespace, w.surface,
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
           o.t_purchase AS purchase_old
    FROM window_keys AS w
    LEFT JOIN earlier_keys AS o
      ON o.namespace = w.namespace AND o.surface = w.surface
     AND o.request_id = w.request_id AND o.item_id = w.item_id
),
impressions AS (
    SELECT namespace, surface, window_new, window_old, explore_new, explore_old,
           experiment_new, experiment_old, variant_new, variant_old, t_old,
           CASE WHEN click_new <= t_new + :attribution_seconds THEN 1 ELSE 0 END
               AS clicked_new,
           CASE WHEN add_to_cart_new <= t_new + :attribution_seconds THEN 1 ELSE 0 END
               AS carted_new,
           CASE WHEN purchase_new <= t_new + :attribution_seconds THEN 1 ELSE 0 END
               AS purchased_new,
           GREATEST(
               CASE WHEN click_new <= t_new + :attribution_seconds THEN :w_click END,
               CASE WHEN add_to_cart_new <= t_new + :attribution_seconds
                    THEN :w_add_to_cart END,
               CASE WHEN purchase_new <= t_new + :attribution_seconds THEN :w_purchase END,
               0
           ) AS reward_new,
           CASE WHEN click_old <= t_old + :attribution_seconds THEN 1 ELSE 0 END
               AS clicked_old,
           CASE WHEN add_to_cart_old <= t_old + :attribution_seconds THEN 1 ELSE 0 END
               AS carted_old,
           CASE WHEN purchase_old <= t_old + :attribution_seconds THEN 1 ELSE 0 END
               AS purchased_old,
           GREATEST(
               CASE WHEN click_old <= t_old + :attribution_seconds THEN :w_click END,
               CASE WHEN add_to_cart_old <= t_old + :attribution_seconds
                    THEN :w_add_to_cart END,
               CASE WHEN purchase_old <= t_old + :attribution_seconds THEN :w_purchase END,
               0
           ) AS reward_old
    FROM keyed
    WHERE t_new IS NOT NULL
),
signed AS (
    -- The impression as it is now, counted in ...
    SELECT namespace, surface, experiment_new AS experiment, variant_new AS variant,
           explore_new AS explore,
           FLOOR(window_new / :window_seconds) * :window_seconds AS window_epoch,
           1 AS impressions, clicked_new AS clicked, carted_new AS carted,
           purchased_new AS purchased, reward_new AS reward, reward_new * reward_new AS reward_sq
    FROM impressions
    UNION ALL
    -- ... minus the impression as it was before the window, taken out where it was.
    SELECT namespace, surface, experiment_old, variant_old, explore_old,
           FLOOR(window_old / :window_seconds) * :window_seconds,
           -1, -clicked_old, -carted_old, -purchased_old, -reward_old, -reward_old * reward_old
    FROM impressions
    WHERE t_old IS NOT NULL
)
SELECT namespace, surface, experiment, variant, explore, window_epoch,
       SUM(impressions) AS impressions, SUM(clicked) AS clicked, SUM(carted) AS carted,
       SUM(purchased) AS purchased, SUM(reward) AS reward_sum, SUM(reward_sq) AS reward_sq_sum
FROM signed
GROUP BY namespace, surface, experiment, variant, explore, window_epoch
HAVING SUM(impressions) <> 0 OR SUM(clicked) <> 0 OR SUM(carted) <> 0
    OR SUM(purchased) <> 0 OR SUM(reward) <> 0 OR SUM(reward_sq) <> 0
