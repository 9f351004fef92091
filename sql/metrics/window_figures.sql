-- The rollup of one window per surface (all experiments and variants together).
-- timestamps: window_start
SELECT surface,
       SUM(bandit_explore_impressions) AS bandit_explore_impressions,
       SUM(bandit_explore_reward_sum) AS bandit_explore_reward_sum,
       SUM(baseline_impressions) AS baseline_impressions,
       SUM(COALESCE(bandit_explore_ctr, 0) * bandit_explore_impressions) AS explore_clicks,
       SUM(COALESCE(baseline_ctr, 0) * baseline_impressions) AS baseline_clicks,
       SUM(impressions) AS impressions,
       SUM(clicks) AS clicks
FROM bandit_explore_metrics
WHERE window_start = :window_start AND namespace = :namespace
GROUP BY surface;
