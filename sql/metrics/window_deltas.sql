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
-- The keys and their times come from the staged bandit_window_keys
-- (posteriors/stage_window_keys.sql, built from posteriors/window_keys.sql): the keys
-- with a row in the window.
WITH impressions_now AS (
    -- Each impression as it is now, ...
    SELECT namespace, surface, window_new, explore_new, experiment_new, variant_new,
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
           ) AS reward_new
    FROM bandit_window_keys
    WHERE in_window AND t_new IS NOT NULL
),
impressions_before AS (
    -- ... and, where it was visible before the window, as it was then. (Two readings of
    -- the staged keys rather than one shared subquery, which the warehouse would store
    -- in full to read it twice.)
    SELECT namespace, surface, window_old, explore_old, experiment_old, variant_old,
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
    FROM bandit_window_keys
    WHERE in_window AND t_new IS NOT NULL AND t_old IS NOT NULL
),
signed AS (
    -- The impression as it is now, counted in ...
    SELECT namespace, surface, experiment_new AS experiment, variant_new AS variant,
           explore_new AS explore,
           FLOOR(window_new / :window_seconds) * :window_seconds AS window_epoch,
           1 AS impressions, clicked_new AS clicked, carted_new AS carted,
           purchased_new AS purchased, reward_new AS reward, reward_new * reward_new AS reward_sq
    FROM impressions_now
    UNION ALL
    -- ... minus the impression as it was before the window, taken out where it was.
    SELECT namespace, surface, experiment_old, variant_old, explore_old,
           FLOOR(window_old / :window_seconds) * :window_seconds,
           -1, -clicked_old, -carted_old, -purchased_old, -reward_old, -reward_old * reward_old
    FROM impressions_before
)
SELECT namespace, surface, experiment, variant, explore, window_epoch,
       SUM(impressions) AS impressions, SUM(clicked) AS clicked, SUM(carted) AS carted,
       SUM(purchased) AS purchased, SUM(reward) AS reward_sum, SUM(reward_sq) AS reward_sq_sum
FROM signed
GROUP BY namespace, surface, experiment, variant, explore, window_epoch
HAVING SUM(impressions) <> 0 OR SUM(clicked) <> 0 OR SUM(carted) <> 0
    OR SUM(purchased) <> 0 OR SUM(reward) <> 0 OR SUM(reward_sq) <> 0
