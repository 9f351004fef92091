-- The empirical prior of each surface at the newest run of the report's range that
-- recorded one (BANDIT_PRIOR_MODE=empirical; no row: the fixed prior was in effect).
-- timestamps: since, until
SELECT pr.surface, pr.as_of, pr.alpha, pr.beta, pr.method, pr.items, pr.max_strength,
       pr.min_evidence
FROM bandit_priors AS pr
WHERE pr.namespace = :namespace AND pr.as_of > :since AND pr.as_of <= :until
  AND pr.as_of = (
      SELECT MAX(q.as_of) FROM bandit_priors AS q
      WHERE q.namespace = pr.namespace AND q.surface = pr.surface
        AND q.as_of > :since AND q.as_of <= :until
  )
ORDER BY pr.surface;
