-- The Beta posteriors of the most-explored items over the report's range: one row per
-- run that changed an item's evidence (between its rows it only decays), with the prior
-- in effect at that run (bandit_priors, else the run's fixed prior).
-- timestamps: since, until
SELECT p.surface, p.item_id, p.as_of,
       COALESCE(pr.alpha, r.prior_alpha) + (p.alpha - r.prior_alpha) AS alpha,
       COALESCE(pr.beta, r.prior_beta) + (p.beta - r.prior_beta) AS beta
FROM bandit_posteriors AS p
JOIN ({{ include reports/most_explored }}) AS top
  ON top.surface = p.surface AND top.item_id = p.item_id
JOIN bandit_posterior_runs AS r ON r.as_of = p.as_of
LEFT JOIN bandit_priors AS pr
  ON pr.as_of = p.as_of AND pr.namespace = p.namespace AND pr.surface = p.surface
WHERE p.namespace = :namespace AND p.as_of > :since AND p.as_of <= :until
ORDER BY p.surface, p.item_id, p.as_of;
