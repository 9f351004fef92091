-- The explored decisions of a range by propensity status ('pending': not recorded yet).
-- timestamps: since, until
SELECT d.surface, COALESCE(p.status, 'pending') AS status, COUNT(DISTINCT d.decision_id) AS decisions
FROM bandit_decisions AS d
LEFT JOIN bandit_decision_propensities AS p ON p.decision_id = d.decision_id
WHERE d.namespace = :namespace AND d.explored
  AND d.decided_at >= :since AND d.decided_at < :until
GROUP BY d.surface, COALESCE(p.status, 'pending');
