-- Exploration and baseline (non-explore slots) per 15-minute window and surface in the
-- report's range, all experiments and variants together; the report adds windows up to
-- hours, so the range need not start on an hour.
-- timestamps: since, until
SELECT window_start, surface,
       SUM(bandit_explore_impressions) AS explore_impressions,
       SUM(bandit_explore_reward_sum) AS explore_reward_sum,
       SUM(COALESCE(bandit_explore_ctr, 0) * bandit_explore_impressions) AS explore_clicks,
       SUM(baseline_impressions) AS baseline_impressions,
       SUM(baseline_reward_sum) AS baseline_reward_sum,
       SUM(COALESCE(baseline_ctr, 0) * baseline_impressions) AS baseline_clicks
FROM bandit_explore_metrics
WHERE namespace = :namespace AND window_start >= :since AND window_start < :until
GROUP BY window_start, surface
ORDER BY window_start, surface;
