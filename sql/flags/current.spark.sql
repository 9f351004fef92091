-- Each flag of a namespace as last set or unset through the product (value NULL: unset;
-- Spark: by time, the events having no sequence number).
SELECT name, MAX_BY(value, at) AS value, MAX_BY(actor, at) AS actor, MAX(at) AS at
FROM bandit_flag_events
WHERE namespace = :namespace
GROUP BY name
ORDER BY name
