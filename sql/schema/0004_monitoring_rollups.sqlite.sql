-- Hourly and daily rollups of bandit_explore_metrics (sqlite: the bucket expression
-- differs). Applied by Alembic revision 0004 after 0004_monitoring_views.sql.

-- Hourly rollup of bandit_explore_metrics (same columns, hourly buckets).
CREATE VIEW bandit_explore_metrics_hourly AS
SELECT
    substr(window_start, 1, 13) || ':00:00.000000' AS period_start,
    namespace, surface, experiment, variant,
    SUM(bandit_explore_impressions) AS bandit_explore_impressions,
    SUM(bandit_explore_reward_sum) AS bandit_explore_reward_sum,
    CASE WHEN SUM(bandit_explore_impressions) > 0
         THEN SUM(bandit_explore_ctr * bandit_explore_impressions) / SUM(bandit_explore_impressions)
    END AS bandit_explore_ctr,
    SUM(baseline_impressions) AS baseline_impressions,
    SUM(baseline_reward_sum) AS baseline_reward_sum,
    CASE WHEN SUM(baseline_impressions) > 0
         THEN SUM(baseline_ctr * baseline_impressions) / SUM(baseline_impressions) END AS baseline_ctr,
    SUM(impressions) AS impressions,
    SUM(clicks) AS clicks,
    SUM(add_to_carts) AS add_to_carts,
    SUM(purchases) AS purchases,
    SUM(reward_sum) AS reward_sum,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(clicks) / SUM(impressions) END AS ctr,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(add_to_carts) / SUM(impressions) END
        AS add_to_cart_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(purchases) / SUM(impressions) END
        AS purchase_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(reward_sum) / SUM(impressions) END
        AS reward_per_impression
FROM bandit_explore_metrics
GROUP BY substr(window_start, 1, 13) || ':00:00.000000', namespace, surface, experiment, variant;

-- Daily rollup of bandit_explore_metrics (same columns, daily buckets).
CREATE VIEW bandit_explore_metrics_daily AS
SELECT
    substr(window_start, 1, 10) || ' 00:00:00.000000' AS period_start,
    namespace, surface, experiment, variant,
    SUM(bandit_explore_impressions) AS bandit_explore_impressions,
    SUM(bandit_explore_reward_sum) AS bandit_explore_reward_sum,
    CASE WHEN SUM(bandit_explore_impressions) > 0
         THEN SUM(bandit_explore_ctr * bandit_explore_impressions) / SUM(bandit_explore_impressions)
    END AS bandit_explore_ctr,
    SUM(baseline_impressions) AS baseline_impressions,
    SUM(baseline_reward_sum) AS baseline_reward_sum,
    CASE WHEN SUM(baseline_impressions) > 0
         THEN SUM(baseline_ctr * baseline_impressions) / SUM(baseline_impressions) END AS baseline_ctr,
    SUM(impressions) AS impressions,
    SUM(clicks) AS clicks,
    SUM(add_to_carts) AS add_to_carts,
    SUM(purchases) AS purchases,
    SUM(reward_sum) AS reward_sum,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(clicks) / SUM(impressions) END AS ctr,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(add_to_carts) / SUM(impressions) END
        AS add_to_cart_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(purchases) / SUM(impressions) END
        AS purchase_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(reward_sum) / SUM(impressions) END
        AS reward_per_impression
FROM bandit_explore_metrics
GROUP BY substr(window_start, 1, 10) || ' 00:00:00.000000', namespace, surface, experiment, variant;
