-- What the events that became visible in [window_start, as_of) change, per item.
--
-- docs/posterior.md: the evidence of an item as of T is the sum over its trained
-- impressions i (explore = true, or every impression when train_all is set; never control) of
-- d_i * r_i (alpha) and d_i * (1 - r_i) (beta), where d_i = 0.5 ** ((T - t_i) / h) capped
-- at 1, t_i is the earliest occurred_at of the impression's rows, and r_i is the largest
-- weight among its outcomes within the attribution window, divided by the largest weight.
-- Only rows with ingested_at < T are visible at T.
--
-- For every impression key that the window touches (a row of it arrived in the window, or
-- it is dated after window_start and so was not yet decaying), this query computes its
-- contribution as of as_of with everything visible now ("new"), and its contribution as
-- of window_start with what was visible then, decayed to as_of ("old"). The difference,
-- summed per item, is what the window adds: new impressions, rewards of earlier
-- impressions whose outcomes arrived late, and earlier re-sent impressions. With
-- window_start far enough in the past, "old" is empty and the result is the whole
-- evidence: the from-scratch computation is this query over the look-back horizon.
--
-- How it stays close to one pass over the window (docs/performance.md): a key needs
-- only the earliest trained impression and the earliest outcome of each type, so the
-- window's rows are reduced to one row per key in a single GROUP BY, and the rows
-- ingested before the window are read only for the keys that have some: the index
-- (namespace, surface, request_id, item_id, ingested_at) answers "any earlier row?" for
-- a key without touching the table, so late outcomes cost in proportion to their number.
-- An outcome counts when occurred_at <= t + attribution, so "the largest weight among
-- the outcomes within the window" is the largest weight whose earliest outcome is within it.
-- timestamps: as_of, window_start, future_scan_start
WITH window_keys AS (
    -- The window's own rows, one row per impression key.
    SELECT namespace, surface, request_id, item_id,
           MIN(CASE WHEN event_type = 'impression' AND (explore OR :train_all)
                     AND COALESCE(variant, '') <> 'control'
                    THEN bandit_epoch(occurred_at) END) AS t_trained,
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
    GROUP BY namespace, surface, request_id, item_id
),
future_keys AS (
    -- Impressions ingested before the window but dated after its start (a producer clock
    -- ahead of the warehouse) whose key has no row in the window: still growing towards
    -- their decay, so the window corrects them too.
    SELECT DISTINCT f.namespace, f.surface, f.request_id, f.item_id
    FROM bandit_rewards AS f
    WHERE f.ingested_at >= :future_scan_start AND f.ingested_at < :window_start
      AND f.event_type = 'impression' AND f.occurred_at > :window_start
      AND NOT EXISTS (
          SELECT 1 FROM bandit_rewards AS w
          WHERE w.namespace = f.namespace AND w.surface = f.surface
            AND w.request_id = f.request_id AND w.item_id = f.item_id
            AND w.ingested_at >= :window_start AND w.ingested_at < :as_of
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
           MIN(CASE WHEN e.event_type = 'click' THEN bandit_epoch(e.occurred_at) END) AS t_click,
           MIN(CASE WHEN e.event_type = 'add_to_cart' THEN bandit_epoch(e.occurred_at) END)
               AS t_add_to_cart,
           MIN(CASE WHEN e.event_type = 'purchase' THEN bandit_epoch(e.occurred_at) END)
               AS t_purchase
    FROM touched_keys AS k
    JOIN bandit_rewards AS e
      ON e.namespace = k.namespace AND e.surface = k.surface
     AND e.request_id = k.request_id AND e.item_id = k.item_id
     AND e.ingested_at < :window_start
    GROUP BY e.namespace, e.surface, e.request_id, e.item_id
),
key_times AS (
    -- Per key: the earliest trained impression and outcome of each type, now (_new: the
    -- window's rows and the earlier ones) and before the window (_old: the earlier ones).
    SELECT COALESCE(w.namespace, o.namespace) AS namespace,
           COALESCE(w.surface, o.surface) AS surface,
           COALESCE(w.item_id, o.item_id) AS item_id,
           LEAST(w.t_trained, o.t_trained) AS t_new,
           o.t_trained AS t_old,
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
),
rewards AS (
    SELECT namespace, surface, item_id, t_new, t_old, clicks, add_to_carts, purchases,
           GREATEST(
               CASE WHEN click_new <= t_new + :attribution_seconds THEN :w_click END,
               CASE WHEN add_to_cart_new <= t_new + :attribution_seconds
                    THEN :w_add_to_cart END,
               CASE WHEN purchase_new <= t_new + :attribution_seconds THEN :w_purchase END,
               0
           ) / :w_max AS r_new,
           GREATEST(
               CASE WHEN click_old <= t_old + :attribution_seconds THEN :w_click END,
               CASE WHEN add_to_cart_old <= t_old + :attribution_seconds
                    THEN :w_add_to_cart END,
               CASE WHEN purchase_old <= t_old + :attribution_seconds THEN :w_purchase END,
               0
           ) / :w_max AS r_old
    FROM key_times
    WHERE t_new IS NOT NULL
),
decayed AS (
    SELECT namespace, surface, item_id, r_new, r_old, t_old, clicks, add_to_carts, purchases,
           bandit_decay(:as_of_epoch - t_new, :half_life_seconds) AS d_new,
           CASE WHEN t_old IS NULL THEN 0.0
                ELSE bandit_decay(:window_start_epoch - t_old, :half_life_seconds)
                     * :window_decay END AS d_old
    FROM rewards
)
SELECT namespace, surface, item_id,
       SUM(CASE WHEN t_old IS NULL THEN 1 ELSE 0 END) AS impressions,
       SUM(clicks) AS clicks,
       SUM(add_to_carts) AS add_to_carts,
       SUM(purchases) AS purchases,
       SUM(d_new * r_new - d_old * r_old) AS reward_evidence,
       SUM(d_new * (1.0 - r_new) - d_old * (1.0 - r_old)) AS non_reward_evidence,
       SUM(CASE WHEN t_old IS NOT NULL AND (r_new <> r_old OR d_new <> d_old)
                THEN 1 ELSE 0 END) AS late_corrections
FROM decayed
GROUP BY namespace, surface, item_id
