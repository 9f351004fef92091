-- Each surface's kill-switch state as last written: its newest trip or reset.
SELECT surface, action, reason, actor, at
FROM bandit_killswitch_events AS e
WHERE namespace = :namespace
  AND event_id = (
      SELECT MAX(event_id) FROM bandit_killswitch_events
      WHERE namespace = e.namespace AND surface = e.surface
  )
ORDER BY surface;
