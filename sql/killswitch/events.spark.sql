-- The newest kill-switch events of a namespace (Spark: by time alone).
SELECT namespace, surface, action, reason, figures, actor, at
FROM bandit_killswitch_events
WHERE namespace = :namespace
ORDER BY at DESC
LIMIT :limit
