-- Record a trip or a reset of the kill switch (Spark: appended).
-- timestamps: as_of
INSERT INTO bandit_killswitch_events
VALUES (:namespace, :surface, :action, :reason, :figures, :actor, :as_of);
