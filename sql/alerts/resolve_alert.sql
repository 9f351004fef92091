-- Close an alert episode.
UPDATE bandit_alerts SET resolved_at = :as_of WHERE alert_id = :alert_id AND resolved_at IS NULL;
