-- What the events that became visible in [window_start, as_of) change, per item: Spark
-- SQL's variant of posteriors/window_evidence.sql, the terms of
-- posteriors/impression_evidence.sql (read it for the definition) summed per item, with
-- the two floating-point sums taken exactly. Spark adds up a group's partial sums in the
-- order its shuffle delivers them, which changes from run to run, and a sum of doubles
-- depends on its order in the last bits; so each term is summed as DECIMAL(38, 28) (an
-- exact sum, whatever the order; terms are at most 1 in magnitude, and 10 integer digits
-- hold any window's total) and the total turned back into a double. A rerun thus gives
-- the same numbers to the last bit. The tests check that this file is the shared one but
-- for those two sums.
SELECT namespace, surface, item_id,
       SUM(CASE WHEN t_old IS NULL THEN 1 ELSE 0 END) AS impressions,
       SUM(clicks) AS clicks,
       SUM(add_to_carts) AS add_to_carts,
       SUM(purchases) AS purchases,
       CAST(SUM(CAST(reward_term AS DECIMAL(38, 28))) AS DOUBLE) AS reward_evidence,
       CAST(SUM(CAST(non_reward_term AS DECIMAL(38, 28))) AS DOUBLE) AS non_reward_evidence,
       SUM(late_correction) AS late_corrections
FROM ({{ include posteriors/impression_evidence }}) AS terms
GROUP BY namespace, surface, item_id
