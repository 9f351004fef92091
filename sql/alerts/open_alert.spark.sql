-- Open an alert episode (Spark: its "opened" event, under an id the caller makes; the
-- sensor evaluates one tick at a time, so one episode per kind and surface is open).
-- timestamps: as_of
INSERT INTO bandit_alert_events
VALUES (:alert_id, 'opened', :as_of, :kind, :namespace, :surface, :explore_impressions,
        :explore_ctr, :baseline_ctr, :details);
