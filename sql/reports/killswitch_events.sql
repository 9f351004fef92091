-- Every trip and reset of a namespace's kill switch up to the end of the report's range
-- (those before its start tell the state the range began in).
-- timestamps: until
SELECT surface, action, reason, actor, at
FROM bandit_killswitch_events
WHERE namespace = :namespace AND at <= :until
ORDER BY at, event_id;
