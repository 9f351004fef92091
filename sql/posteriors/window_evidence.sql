-- What the events that became visible in [window_start, as_of) change, per item: the
-- terms of posteriors/impression_evidence.sql (read it for the definition) summed per
-- item. Both dialects that read keys in no fixed order have a variant of this file that
-- takes the two floating-point sums exactly (window_evidence.postgresql.sql,
-- window_evidence.spark.sql); SQLite sums the staged keys in their stored order.
SELECT namespace, surface, item_id,
       SUM(CASE WHEN t_old IS NULL THEN 1 ELSE 0 END) AS impressions,
       SUM(clicks) AS clicks,
       SUM(add_to_carts) AS add_to_carts,
       SUM(purchases) AS purchases,
       SUM(reward_term) AS reward_evidence,
       SUM(non_reward_term) AS non_reward_evidence,
       SUM(late_correction) AS late_corrections
FROM ({{ include posteriors/impression_evidence }}) AS terms
GROUP BY namespace, surface, item_id
