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
-- timestamps: as_of, window_start, future_scan_start
WITH touched_keys AS (
    SELECT namespace, surface, request_id, item_id
    FROM bandit_rewards
    WHERE ingested_at >= :window_start AND ingested_at < :as_of
    UNION
    SELECT namespace, surface, request_id, item_id
    FROM bandit_rewards
    WHERE ingested_at >= :future_scan_start AND ingested_at < :window_start
      AND event_type = 'impression' AND occurred_at > :window_start
),
key_events AS (
    SELECT e.namespace, e.surface, e.request_id, e.item_id, e.event_type, e.explore,
           e.variant, e.ingested_at, bandit_epoch(e.occurred_at) AS occurred_epoch
    FROM bandit_rewards AS e
    JOIN touched_keys AS k
      ON e.namespace = k.namespace AND e.surface = k.surface
     AND e.request_id = k.request_id AND e.item_id = k.item_id
    WHERE e.ingested_at < :as_of
),
keyed AS (
    -- One pass sorted by impression key: each row learns its impression's time now
    -- (t_new) and before the window (t_old), with no self-join.
    SELECT namespace, surface, request_id, item_id, event_type, ingested_at, occurred_epoch,
           MIN(CASE WHEN event_type = 'impression' AND (explore OR :train_all)
                     AND COALESCE(variant, '') <> 'control'
                    THEN occurred_epoch END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS t_new,
           MIN(CASE WHEN event_type = 'impression' AND (explore OR :train_all)
                     AND COALESCE(variant, '') <> 'control' AND ingested_at < :window_start
                    THEN occurred_epoch END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS t_old,
           CASE event_type
               WHEN 'click' THEN :w_click
               WHEN 'add_to_cart' THEN :w_add_to_cart
               WHEN 'purchase' THEN :w_purchase
           END AS weight
    FROM key_events
),
rewards AS (
    SELECT namespace, surface, item_id, t_new, t_old,
           COALESCE(MAX(CASE WHEN occurred_epoch <= t_new + :attribution_seconds
                             THEN weight END), 0) / :w_max AS r_new,
           COALESCE(MAX(CASE WHEN ingested_at < :window_start
                              AND occurred_epoch <= t_old + :attribution_seconds
                             THEN weight END), 0) / :w_max AS r_old,
           SUM(CASE WHEN ingested_at >= :window_start AND event_type = 'click'
                    THEN 1 ELSE 0 END) AS clicks,
           SUM(CASE WHEN ingested_at >= :window_start AND event_type = 'add_to_cart'
                    THEN 1 ELSE 0 END) AS add_to_carts,
           SUM(CASE WHEN ingested_at >= :window_start AND event_type = 'purchase'
                    THEN 1 ELSE 0 END) AS purchases
    FROM keyed
    WHERE t_new IS NOT NULL
    GROUP BY namespace, surface, request_id, item_id, t_new, t_old
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
