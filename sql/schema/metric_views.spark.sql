-- The metric view the CTR alert and the kill switch read (metrics/last_hour.sql), as a
-- temporary view of the warehouse's session: the same query as bandit_explore_metrics on
-- the other engines (sql/schema/0004_monitoring_views.sql; a test holds the two to the
-- same text).
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

-- The alert episodes, one row per alert_id, as the table bandit_alerts of the other
-- engines: opened, and when the webhook took it and when it was resolved (NULL: not yet).
CREATE OR REPLACE TEMPORARY VIEW bandit_alerts AS
SELECT alert_id,
       MAX(kind) AS kind,
       MAX(namespace) AS namespace,
       MAX(surface) AS surface,
       MIN(CASE WHEN event = 'opened' THEN at END) AS opened_at,
       MIN(CASE WHEN event = 'resolved' THEN at END) AS resolved_at,
       MAX(explore_impressions) AS explore_impressions,
       MAX(explore_ctr) AS explore_ctr,
       MAX(baseline_ctr) AS baseline_ctr,
       MAX(details) AS details,
       MIN(CASE WHEN event = 'notified' THEN at END) AS notified_at
FROM bandit_alert_events
GROUP BY alert_id;
