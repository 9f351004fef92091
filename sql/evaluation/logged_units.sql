-- The exploration slots of a range's explored decisions whose propensities are recorded:
-- one row per decision and slot, with the chosen item and the served policy's
-- propensity of it in that slot.
-- timestamps: since, until
SELECT d.decision_id, d.decided_at, d.surface, d.request_id, d.snapshot_version,
       d.skipped_recent, d.skipped_shown, p.rank, p.slot, p.item_id, p.propensity, p.eligible
FROM bandit_decisions AS d
JOIN bandit_decision_propensities AS p ON p.decision_id = d.decision_id
WHERE d.namespace = :namespace
  AND d.decided_at >= :since AND d.decided_at < :until
  AND p.status = 'ok'
ORDER BY d.decision_id, p.rank;
