-- The session views the lake's safeguards read, created when a Spark warehouse opens.
-- bandit_explore_metrics comes first, from the other engines' own statement
-- (sql/schema/0004_monitoring_views.sql, warehouse/spark.py: metric_view_statement).

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
