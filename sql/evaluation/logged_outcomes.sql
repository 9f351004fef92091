-- The explore impressions of a range's explored decisions, each with every outcome that
-- occurred within :attribution_seconds after it (one row per outcome; event_type NULL
-- when it has none), as the posterior attributes them (docs/posterior.md). The decisions
-- drive the join (CROSS JOIN keeps SQLite from scanning every event first).
-- timestamps: since, until
WITH impressions AS (
    SELECT i.namespace, i.surface, i.request_id, i.item_id, MIN(i.occurred_at) AS shown_at
    FROM bandit_decisions AS d
    CROSS JOIN bandit_rewards AS i
    WHERE i.namespace = d.namespace AND i.surface = d.surface AND i.request_id = d.request_id
      AND i.event_type = 'impression' AND i.explore
      AND d.namespace = :namespace AND d.explored
      AND d.decided_at >= :since AND d.decided_at < :until
    GROUP BY i.namespace, i.surface, i.request_id, i.item_id
)
SELECT m.surface, m.request_id, m.item_id, o.event_type
FROM impressions AS m
LEFT JOIN bandit_rewards AS o
  ON o.namespace = m.namespace AND o.surface = m.surface AND o.request_id = m.request_id
 AND o.item_id = m.item_id AND o.event_type <> 'impression'
 AND bandit_epoch(o.occurred_at) - bandit_epoch(m.shown_at) <= :attribution_seconds;
