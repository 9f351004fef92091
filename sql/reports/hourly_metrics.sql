-- Exploration against baseline per hour and surface, all experiments and variants together.
SELECT period_start, surface,
       SUM(bandit_explore_impressions) AS bandit_explore_impressions,
       CASE WHEN SUM(bandit_explore_impressions) > 0
            THEN SUM(bandit_explore_ctr * bandit_explore_impressions)
                 / SUM(bandit_explore_impressions) END AS bandit_explore_ctr,
       CASE WHEN SUM(baseline_impressions) > 0
            THEN SUM(baseline_ctr * baseline_impressions) / SUM(baseline_impressions)
       END AS baseline_ctr
FROM bandit_explore_metrics_hourly
WHERE namespace = :namespace
GROUP BY period_start, surface
ORDER BY period_start, surface;
