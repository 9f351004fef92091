-- Figures of one window for the run record and the Dagster metadata.
-- timestamps: as_of
SELECT COUNT(*) AS items_touched,
       COALESCE(SUM(impressions), 0) AS impressions,
       COALESCE(SUM(clicks), 0) AS clicks,
       COALESCE(SUM(add_to_carts), 0) AS add_to_carts,
       COALESCE(SUM(purchases), 0) AS purchases,
       COALESCE(SUM(reward_evidence), 0.0) AS reward_evidence,
       COALESCE(SUM(late_corrections), 0) AS late_corrections
FROM bandit_reward_aggregates
WHERE as_of = :as_of;
