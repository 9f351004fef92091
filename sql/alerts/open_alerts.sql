-- Open alert episodes of a namespace.
SELECT alert_id, kind, surface, opened_at, notified_at
FROM bandit_alerts
WHERE namespace = :namespace AND resolved_at IS NULL;
