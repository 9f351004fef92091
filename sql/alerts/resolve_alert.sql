-- Close an alert episode.
-- timestamps: as_of
UPDATE bandit_alerts SET resolved_at = :as_of WHERE alert_id = :alert_id AND resolved_at IS NULL;
