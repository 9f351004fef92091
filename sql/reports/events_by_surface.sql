-- Events per surface and type in one namespace, with how many were served by exploration.
SELECT
    surface,
    event_type,
    COUNT(*) AS events,
    SUM(CASE WHEN explore THEN 1 ELSE 0 END) AS explore_events
FROM bandit_rewards
WHERE namespace = :namespace
GROUP BY surface, event_type
ORDER BY surface, event_type;
