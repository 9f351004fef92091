-- Each surface's kill-switch state as last written: its newest trip or reset (Spark: by
-- time, the events having no sequence number).
SELECT surface, MAX_BY(action, at) AS action, MAX_BY(reason, at) AS reason,
       MAX_BY(actor, at) AS actor, MAX(at) AS at
FROM bandit_killswitch_events
WHERE namespace = :namespace
GROUP BY surface
ORDER BY surface
