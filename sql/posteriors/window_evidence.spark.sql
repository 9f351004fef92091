-- What the events that became visible in [window_start, as_of) change, per item: Spark
-- SQL's variant of posteriors/window_evidence.sql (read it for the definition), with the
-- two floating-point sums taken exactly. Spark adds up a group's partial sums in the
-- order its shuffle delivers them, which changes from run to run, and a sum of doubles
-- depends on its order in the last bits; so each term is summed as DECIMAL(38, 28) (an
-- exact sum, whatever the order; terms are below 1 in magnitude, and 10 integer digits
-- hold any window's total) and the total turned back into a double. A rerun thus gives
-- the same numbers to the last bit. The tests check that this file is the shared one but
-- for those two sums.
--
-- The keys and their times come from the staged bandit_window_keys (spark_window.py).
WITH rewards AS (
    SELECT namespace, surface, item_id, t_trained_new AS t_new, t_trained_old AS t_old,
           clicks, add_to_carts, purchases,
           GREATEST(
               CASE WHEN click_new <= t_trained_new + :attribution_seconds THEN :w_click END,
               CASE WHEN add_to_cart_new <= t_trained_new + :attribution_seconds
                    THEN :w_add_to_cart END,
               CASE WHEN purchase_new <= t_trained_new + :attribution_seconds
                    THEN :w_purchase END,
               0
           ) / :w_max AS r_new,
           GREATEST(
               CASE WHEN click_old <= t_trained_old + :attribution_seconds THEN :w_click END,
               CASE WHEN add_to_cart_old <= t_trained_old + :attribution_seconds
                    THEN :w_add_to_cart END,
               CASE WHEN purchase_old <= t_trained_old + :attribution_seconds
                    THEN :w_purchase END,
               0
           ) / :w_max AS r_old
    FROM bandit_window_keys
    WHERE t_trained_new IS NOT NULL
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
       CAST(SUM(CAST(d_new * r_new - d_old * r_old AS DECIMAL(38, 28))) AS DOUBLE)
           AS reward_evidence,
       CAST(SUM(CAST(d_new * (1.0 - r_new) - d_old * (1.0 - r_old) AS DECIMAL(38, 28))) AS DOUBLE)
           AS non_reward_evidence,
       SUM(CASE WHEN t_old IS NOT NULL AND (r_new <> r_old OR d_new <> d_old)
                THEN 1 ELSE 0 END) AS late_corrections
FROM decayed
GROUP BY namespace, surface, item_id
