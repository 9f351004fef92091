-- What each impression key the window touches adds to its item's evidence: the terms
-- that posteriors/window_evidence.sql (and its dialect variants) sum per item.
--
-- docs/posterior.md: the evidence of an item as of T is the sum over its trained
-- impressions i (explore = true, or every impression when train_all is set; never
-- control) of d_i * r_i (alpha) and d_i * (1 - r_i) (beta), where d_i = 0.5 ** ((T - t_i)
-- / h) capped at 1, t_i is the earliest occurred_at of the impression's rows, and r_i is
-- the largest weight among its outcomes within the attribution window, divided by the
-- largest weight. Only rows with ingested_at < T are visible at T.
--
-- For every impression key that the window touches (a row of it arrived in the window, or
-- it is dated after window_start and so was not yet decaying), this query computes its
-- contribution as of as_of with everything visible now ("new"), and its contribution as
-- of window_start with what was visible then, decayed to as_of ("old"). The difference
-- (each term at most 1 in magnitude), summed per item, is what the window adds: new
-- impressions, rewards of earlier impressions whose outcomes arrived late, and earlier
-- re-sent impressions. With window_start far enough in the past, "old" is empty and the
-- sum is the whole evidence: the from-scratch computation is the same sum over the
-- look-back horizon.
--
-- The keys and their times come from the staged bandit_window_keys
-- (posteriors/stage_window_keys.sql, built from posteriors/window_keys.sql).
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
SELECT namespace, surface, item_id, t_old, clicks, add_to_carts, purchases,
       d_new * r_new - d_old * r_old AS reward_term,
       d_new * (1.0 - r_new) - d_old * (1.0 - r_old) AS non_reward_term,
       CASE WHEN t_old IS NOT NULL AND (r_new <> r_old OR d_new <> d_old)
            THEN 1 ELSE 0 END AS late_correction
FROM decayed
