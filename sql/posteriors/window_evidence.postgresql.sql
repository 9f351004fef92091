-- What the events that became visible in [window_start, as_of) change, per item:
-- PostgreSQL's variant of posteriors/window_evidence.sql, the terms of
-- posteriors/impression_evidence.sql (read it for the definition) summed per item, with
-- the two floating-point sums taken exactly. The staged keys are in no fixed order
-- (posteriors/stage_window_keys.postgresql.sql), and a sum of doubles depends on its
-- order in the last bits; so each term, at most 1 in magnitude, is rounded to a multiple
-- of 1e-18 and summed as an integer (bigint terms, a numeric total: exact whatever the
-- order, and far finer than a double's precision near 1), and the total turned back into
-- a double. A rerun thus gives the same numbers to the last bit. The tests check that
-- this file is the shared one but for those two sums.
SELECT namespace, surface, item_id,
       SUM(CASE WHEN t_old IS NULL THEN 1 ELSE 0 END) AS impressions,
       SUM(clicks) AS clicks,
       SUM(add_to_carts) AS add_to_carts,
       SUM(purchases) AS purchases,
       (SUM(ROUND(reward_term * 1e18)::bigint) / 1e18)::float8 AS reward_evidence,
       (SUM(ROUND(non_reward_term * 1e18)::bigint) / 1e18)::float8 AS non_reward_evidence,
       SUM(late_correction) AS late_corrections
FROM ({{ include posteriors/impression_evidence }}) AS terms
GROUP BY namespace, surface, item_id
