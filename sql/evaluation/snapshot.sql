-- The copied snapshot of one (namespace, surface, version), in snapshot order.
SELECT item_id, alpha, beta
FROM bandit_decision_snapshots
WHERE namespace = :namespace AND surface = :surface AND version = :version
ORDER BY position;
