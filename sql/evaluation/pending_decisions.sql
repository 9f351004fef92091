-- Explored decisions after :after (a decision_id) whose propensities are not recorded
-- yet, oldest first: the next batch of `bandit-pipeline propensities update`.
SELECT d.decision_id, d.namespace, d.surface, d.policy_id, d.snapshot_version, d.seed,
       d.explore_slots, d.chosen, d.scores, d.eligible, d.skipped_recent, d.skipped_shown
FROM bandit_decisions AS d
WHERE d.explored
  AND d.decision_id > :after
  AND NOT EXISTS (
      SELECT 1 FROM bandit_decision_propensities AS p WHERE p.decision_id = d.decision_id
  )
ORDER BY d.decision_id
LIMIT :batch;
