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
-- An impression's reward is the largest weight among its outcomes. Rather than adding up
-- the rewards as doubles, whose sum depends on the order of its terms in the last bits,
-- the query counts the impressions whose largest-weight outcome is each type (ties go to
-- the later type of the funnel; the reward is the same) and multiplies the counts by the
-- weights: the sums are the same to the last bit in any order, so a rerun's rows equal a
-- clean run's on every warehouse.
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
               AS purchased_new
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
               AS purchased_old
    FROM bandit_window_keys
    WHERE in_window AND t_new IS NOT NULL AND t_old IS NOT NULL
),
signed AS (
    -- The impression as it is now, counted in ...
    SELECT namespace, surface, experiment_new AS experiment, variant_new AS variant,
           explore_new AS explore,
           FLOOR(window_new / :window_seconds) * :window_seconds AS window_epoch,
           1 AS sign, clicked_new AS clicked, carted_new AS carted, purchased_new AS purchased
    FROM impressions_now
    UNION ALL
    -- ... minus the impression as it was before the window, taken out where it was.
    SELECT namespace, surface, experiment_old, variant_old, explore_old,
           FLOOR(window_old / :window_seconds) * :window_seconds,
           -1, clicked_old, carted_old, purchased_old
    FROM impressions_before
),
rewarded AS (
    -- The type of each impression's largest-weight outcome: 3 purchase, 2 add to cart,
    -- 1 click, 0 none.
    SELECT namespace, surface, experiment, variant, explore, window_epoch, sign,
           clicked, carted, purchased,
           CASE WHEN purchased = 1 AND (carted = 0 OR :w_purchase >= :w_add_to_cart)
                     AND (clicked = 0 OR :w_purchase >= :w_click) THEN 3
                WHEN carted = 1 AND (clicked = 0 OR :w_add_to_cart >= :w_click)
                     AND (purchased = 0 OR :w_add_to_cart >= :w_purchase) THEN 2
                WHEN clicked = 1 THEN 1
                ELSE 0 END AS best
    FROM signed
),
grouped AS (
    SELECT namespace, surface, experiment, variant, explore, window_epoch,
           SUM(sign) AS impressions, SUM(sign * clicked) AS clicked,
           SUM(sign * carted) AS carted, SUM(sign * purchased) AS purchased,
           SUM(CASE WHEN best = 1 THEN sign ELSE 0 END) AS best_click,
           SUM(CASE WHEN best = 2 THEN sign ELSE 0 END) AS best_add_to_cart,
           SUM(CASE WHEN best = 3 THEN sign ELSE 0 END) AS best_purchase
    FROM rewarded
    GROUP BY namespace, surface, experiment, variant, explore, window_epoch
),
summed AS (
    SELECT namespace, surface, experiment, variant, explore, window_epoch,
           impressions, clicked, carted, purchased,
           :w_click * best_click + :w_add_to_cart * best_add_to_cart
               + :w_purchase * best_purchase AS reward_sum,
           :w_click * :w_click * best_click
               + :w_add_to_cart * :w_add_to_cart * best_add_to_cart
               + :w_purchase * :w_purchase * best_purchase AS reward_sq_sum
    FROM grouped
)
SELECT namespace, surface, experiment, variant, explore, window_epoch,
       impressions, clicked, carted, purchased, reward_sum, reward_sq_sum
FROM summed
WHERE impressions <> 0 OR clicked <> 0 OR carted <> 0 OR purchased <> 0
   OR reward_sum <> 0 OR reward_sq_sum <> 0
