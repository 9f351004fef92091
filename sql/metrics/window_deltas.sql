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
-- timestamps: as_of, window_start
WITH touched_keys AS (
    SELECT DISTINCT namespace, surface, request_id, item_id
    FROM bandit_rewards
    WHERE ingested_at >= :window_start AND ingested_at < :as_of
),
key_events AS (
    SELECT e.namespace, e.surface, e.request_id, e.item_id, e.event_type, e.explore,
           e.experiment, e.variant, e.ingested_at, bandit_epoch(e.ingested_at) AS ingested_epoch,
           bandit_epoch(e.occurred_at) AS occurred_epoch
    FROM bandit_rewards AS e
    JOIN touched_keys AS k
      ON e.namespace = k.namespace AND e.surface = k.surface
     AND e.request_id = k.request_id AND e.item_id = k.item_id
    WHERE e.ingested_at < :as_of
),
keyed AS (
    SELECT namespace, surface, request_id, item_id, event_type, ingested_at, occurred_epoch,
           MIN(CASE WHEN event_type = 'impression' THEN occurred_epoch END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS t_new,
           MIN(CASE WHEN event_type = 'impression' AND ingested_at < :window_start
                    THEN occurred_epoch END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS t_old,
           -- The impression's window and group, with everything visible now (_new) and
           -- with what was visible before the run's window (_old).
           MIN(CASE WHEN event_type = 'impression' THEN ingested_epoch END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS window_new,
           MIN(CASE WHEN event_type = 'impression' AND ingested_at < :window_start
                    THEN ingested_epoch END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS window_old,
           MAX(CASE WHEN event_type = 'impression' AND explore THEN 1 ELSE 0 END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS explore_new,
           MAX(CASE WHEN event_type = 'impression' AND explore AND ingested_at < :window_start
                    THEN 1 ELSE 0 END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS explore_old,
           MAX(CASE WHEN event_type = 'impression' THEN COALESCE(experiment, '') END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS experiment_new,
           MAX(CASE WHEN event_type = 'impression' AND ingested_at < :window_start
                    THEN COALESCE(experiment, '') END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS experiment_old,
           MAX(CASE WHEN event_type = 'impression' THEN COALESCE(variant, '') END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS variant_new,
           MAX(CASE WHEN event_type = 'impression' AND ingested_at < :window_start
                    THEN COALESCE(variant, '') END)
               OVER (PARTITION BY namespace, surface, request_id, item_id) AS variant_old
    FROM key_events
),
impressions AS (
    SELECT namespace, surface, window_new, window_old, explore_new, explore_old,
           experiment_new, experiment_old, variant_new, variant_old, t_old,
           MAX(CASE WHEN event_type = 'click' AND occurred_epoch <= t_new + :attribution_seconds
                    THEN 1 ELSE 0 END) AS clicked_new,
           MAX(CASE WHEN event_type = 'add_to_cart'
                     AND occurred_epoch <= t_new + :attribution_seconds THEN 1 ELSE 0 END)
               AS carted_new,
           MAX(CASE WHEN event_type = 'purchase'
                     AND occurred_epoch <= t_new + :attribution_seconds THEN 1 ELSE 0 END)
               AS purchased_new,
           COALESCE(MAX(CASE WHEN occurred_epoch <= t_new + :attribution_seconds THEN
                    CASE event_type WHEN 'click' THEN :w_click
                                    WHEN 'add_to_cart' THEN :w_add_to_cart
                                    WHEN 'purchase' THEN :w_purchase END END), 0) AS reward_new,
           MAX(CASE WHEN event_type = 'click' AND ingested_at < :window_start
                     AND occurred_epoch <= t_old + :attribution_seconds THEN 1 ELSE 0 END)
               AS clicked_old,
           MAX(CASE WHEN event_type = 'add_to_cart' AND ingested_at < :window_start
                     AND occurred_epoch <= t_old + :attribution_seconds THEN 1 ELSE 0 END)
               AS carted_old,
           MAX(CASE WHEN event_type = 'purchase' AND ingested_at < :window_start
                     AND occurred_epoch <= t_old + :attribution_seconds THEN 1 ELSE 0 END)
               AS purchased_old,
           COALESCE(MAX(CASE WHEN ingested_at < :window_start
                              AND occurred_epoch <= t_old + :attribution_seconds THEN
                    CASE event_type WHEN 'click' THEN :w_click
                                    WHEN 'add_to_cart' THEN :w_add_to_cart
                                    WHEN 'purchase' THEN :w_purchase END END), 0) AS reward_old
    FROM keyed
    WHERE t_new IS NOT NULL
    GROUP BY namespace, surface, request_id, item_id, window_new, window_old, explore_new,
             explore_old, experiment_new, experiment_old, variant_new, variant_old, t_old
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
