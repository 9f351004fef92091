-- Each flag of a namespace as last set or unset through the product (value NULL: unset).
SELECT name, value, actor, at
FROM bandit_flag_events AS e
WHERE namespace = :namespace
  AND event_id = (
      SELECT MAX(event_id) FROM bandit_flag_events
      WHERE namespace = e.namespace AND name = e.name
  )
ORDER BY name;
