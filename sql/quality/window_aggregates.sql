-- One window's reward aggregates, reduced in one pass to what their suite checks: the
-- smallest and the largest value of each checked column (a row each: every value lies
-- within bounds exactly when both do; a NaN shows as one of them), how many rows lack a
-- value, and how many moved more evidence than their bound (each new or corrected
-- impression moves at most one unit of evidence). The suite validates those two rows
-- however many items the window touched; an empty window gives none.
-- timestamps: as_of
WITH summary AS (
    SELECT COUNT(*) AS aggregate_rows,
           SUM(CASE WHEN impressions IS NULL OR clicks IS NULL OR add_to_carts IS NULL
                      OR purchases IS NULL OR late_corrections IS NULL
                      OR reward_evidence IS NULL OR non_reward_evidence IS NULL
                    THEN 1 ELSE 0 END) AS rows_missing_a_value,
           SUM(CASE WHEN reward_evidence + non_reward_evidence
                         > impressions + late_corrections + 1e-9
                    THEN 1 ELSE 0 END) AS rows_over_evidence_bound,
           MIN(impressions) AS min_impressions, MIN(clicks) AS min_clicks,
           MIN(add_to_carts) AS min_add_to_carts, MIN(purchases) AS min_purchases,
           MIN(late_corrections) AS min_late_corrections,
           MIN(reward_evidence) AS min_reward_evidence,
           MAX(reward_evidence) AS max_reward_evidence,
           MIN(non_reward_evidence) AS min_non_reward_evidence,
           MAX(non_reward_evidence) AS max_non_reward_evidence
    FROM bandit_reward_aggregates
    WHERE as_of = :as_of
)
SELECT 'smallest' AS extreme, aggregate_rows, rows_missing_a_value, rows_over_evidence_bound,
       min_impressions AS impressions, min_clicks AS clicks, min_add_to_carts AS add_to_carts,
       min_purchases AS purchases, min_late_corrections AS late_corrections,
       min_reward_evidence AS reward_evidence, min_non_reward_evidence AS non_reward_evidence
FROM summary
WHERE aggregate_rows > 0
UNION ALL
SELECT 'largest', aggregate_rows, rows_missing_a_value, rows_over_evidence_bound,
       min_impressions, min_clicks, min_add_to_carts, min_purchases, min_late_corrections,
       max_reward_evidence, max_non_reward_evidence
FROM summary
WHERE aggregate_rows > 0;
