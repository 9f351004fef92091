-- The copied snapshots the explored decisions of a range drew from, in snapshot order.
-- timestamps: since, until
SELECT s.surface, s.version, s.position, s.item_id, s.alpha, s.beta
FROM bandit_decision_snapshots AS s
WHERE s.namespace = :namespace
  AND s.version IN (
      SELECT DISTINCT snapshot_version FROM bandit_decisions
      WHERE namespace = :namespace AND explored
        AND decided_at >= :since AND decided_at < :until
  )
ORDER BY s.surface, s.version, s.position;
