-- Users per (namespace, surface, experiment, variant) among the impressions that occurred
-- in [:since, :until), in :namespace or (NULL) in every namespace: the units the
-- experiment assigns, for the sample-ratio-mismatch check. Impressions come in requests
-- and users, not one by one, so their control share varies far more than a binomial
-- count would; the users' share does not.
-- timestamps: since, until
SELECT namespace, surface, experiment, variant, COUNT(DISTINCT user_id) AS users
FROM bandit_rewards
WHERE (CAST(:namespace AS TEXT) IS NULL OR namespace = :namespace)
  AND event_type = 'impression'
  AND experiment IS NOT NULL AND variant IN ('control', 'treatment')
  AND occurred_at >= :since AND occurred_at < :until
GROUP BY namespace, surface, experiment, variant;
