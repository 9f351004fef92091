-- Close an alert episode (Spark: its "resolved" event).
-- timestamps: as_of
INSERT INTO bandit_alert_events
SELECT alert_id, 'resolved', :as_of, kind, namespace, surface, NULL, NULL, NULL, ''
FROM bandit_alerts
WHERE alert_id = :alert_id AND resolved_at IS NULL;
