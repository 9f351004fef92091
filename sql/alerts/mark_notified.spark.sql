-- The webhook accepted the alert (Spark: its "notified" event).
-- timestamps: as_of
INSERT INTO bandit_alert_events
SELECT alert_id, 'notified', :as_of, kind, namespace, surface, NULL, NULL, NULL, ''
FROM bandit_alerts
WHERE alert_id = :alert_id;
