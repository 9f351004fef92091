-- Per surface and window of the hour before :as_of: exploration and baseline figures,
-- for the CTR alert and the kill switch.
-- timestamps: as_of, window_start
SELECT surface, window_start,
       SUM(bandit_explore_impressions) AS explore_impressions,
       SUM(COALESCE(bandit_explore_ctr, 0) * bandit_explore_impressions) AS explore_clicks,
       SUM(bandit_explore_reward_sum) AS explore_reward,
       SUM(baseline_impressions) AS baseline_impressions,
       SUM(COALESCE(baseline_ctr, 0) * baseline_impressions) AS baseline_clicks,
       SUM(baseline_reward_sum) AS baseline_reward
FROM bandit_explore_metrics
WHERE namespace = :namespace AND window_start >= :window_start AND window_start < :as_of
GROUP BY surface, window_start
ORDER BY surface, window_start;
