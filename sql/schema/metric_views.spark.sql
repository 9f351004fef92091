-- The metric view the kill switch reads (metrics/last_hour.sql), as a temporary view of
-- the warehouse's session: the same query as bandit_explore_metrics on the other engines
-- (sql/schema/0004_monitoring_views.sql; a test holds the two to the same text).
CREATE OR REPLACE TEMPORARY VIEW bandit_explore_metrics AS
SELECT
    window_start,
    namespace,
    surface,
    NULLIF(experiment, '') AS experiment,
    NULLIF(variant, '') AS variant,
    SUM(CASE WHEN explore = 1 THEN impressions ELSE 0 END) AS bandit_explore_impressions,
    SUM(CASE WHEN explore = 1 THEN reward_sum ELSE 0 END) AS bandit_explore_reward_sum,
    CASE WHEN SUM(CASE WHEN explore = 1 THEN impressions ELSE 0 END) > 0
         THEN 1.0 * SUM(CASE WHEN explore = 1 THEN clicked ELSE 0 END)
              / SUM(CASE WHEN explore = 1 THEN impressions ELSE 0 END) END AS bandit_explore_ctr,
    SUM(CASE WHEN explore = 0 THEN impressions ELSE 0 END) AS baseline_impressions,
    SUM(CASE WHEN explore = 0 THEN reward_sum ELSE 0 END) AS baseline_reward_sum,
    CASE WHEN SUM(CASE WHEN explore = 0 THEN impressions ELSE 0 END) > 0
         THEN 1.0 * SUM(CASE WHEN explore = 0 THEN clicked ELSE 0 END)
              / SUM(CASE WHEN explore = 0 THEN impressions ELSE 0 END) END AS baseline_ctr,
    SUM(impressions) AS impressions,
    SUM(clicked) AS clicks,
    SUM(carted) AS add_to_carts,
    SUM(purchased) AS purchases,
    SUM(reward_sum) AS reward_sum,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(clicked) / SUM(impressions) END AS ctr,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(carted) / SUM(impressions) END
        AS add_to_cart_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(purchased) / SUM(impressions) END
        AS purchase_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(reward_sum) / SUM(impressions) END
        AS reward_per_impression
FROM bandit_metric_deltas
GROUP BY window_start, namespace, surface, experiment, variant;
