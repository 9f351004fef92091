-- What the events that became visible in [window_start, as_of) change, per item:
-- PostgreSQL's variant of posteriors/window_evidence.sql (read it for the definition),
-- with the two floating-point sums taken exactly. The staged keys are in no fixed order
-- (posteriors/stage_window_keys.postgresql.sql), and a sum of doubles depends on its
-- order in the last bits; so each term, at most 1 in magnitude, is rounded to a multiple
-- of 1e-18 and summed as an integer (bigint terms, a numeric total: exact whatever the
-- order, and far finer than a double's precision near 1), and the total turned back into
-- a double. A rerun thus gives the same numbers to the last bit. The tests check that
-- this file is the shared one but for those two sums.
--
-- The keys and their times come from the staged bandit_window_keys
-- (posteriors/stage_window_keys.postgresql.sql, built from posteriors/window_keys.sql).
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
       (SUM(ROUND((d_new * r_new - d_old * r_old) * 1e18)::bigint) / 1e18)::float8
           AS reward_evidence,
       (SUM(ROUND((d_new * (1.0 - r_new) - d_old * (1.0 - r_old)) * 1e18)::bigint) / 1e18)::float8
           AS non_reward_evidence,
       SUM(CASE WHEN t_old IS NOT NULL AND (r_new <> r_old OR d_new <> d_old)
                THEN 1 ELSE 0 END) AS late_corrections
FROM decayed
GROUP BY namespace, surface, item_id
