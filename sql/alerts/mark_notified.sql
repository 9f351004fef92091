-- The webhook accepted the alert.
UPDATE bandit_alerts SET notified_at = :as_of WHERE alert_id = :alert_id;
