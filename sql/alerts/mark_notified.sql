-- The webhook accepted the alert.
-- timestamps: as_of
UPDATE bandit_alerts SET notified_at = :as_of WHERE alert_id = :alert_id;
