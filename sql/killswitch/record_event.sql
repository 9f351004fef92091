-- Record a trip or a reset of the kill switch.
-- timestamps: as_of
INSERT INTO bandit_killswitch_events (namespace, surface, action, reason, figures, actor, at)
VALUES (:namespace, :surface, :action, :reason, :figures, :actor, :as_of);
