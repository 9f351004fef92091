-- Figures of one window for the run record (Spark SQL's variant of
-- posteriors/window_summary.sql: the evidence summed exactly, as in
-- posteriors/window_evidence.spark.sql, so that a rerun records the same number).
-- timestamps: as_of
SELECT COUNT(*) AS items_touched,
       COALESCE(SUM(impressions), 0) AS impressions,
       COALESCE(SUM(clicks), 0) AS clicks,
       COALESCE(SUM(add_to_carts), 0) AS add_to_carts,
       COALESCE(SUM(purchases), 0) AS purchases,
       COALESCE(CAST(SUM(CAST(reward_evidence AS DECIMAL(38, 28))) AS DOUBLE), 0.0D)
           AS reward_evidence,
       COALESCE(SUM(late_corrections), 0) AS late_corrections
FROM bandit_reward_aggregates
WHERE as_of = :as_of;
