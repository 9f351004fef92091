-- The newest kill-switch events of a namespace.
SELECT namespace, surface, action, reason, figures, actor, at
FROM bandit_killswitch_events
WHERE namespace = :namespace
ORDER BY at DESC, event_id DESC
LIMIT :limit;
