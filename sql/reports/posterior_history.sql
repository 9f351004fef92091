-- The stored Beta posteriors of the most-explored items over the report's range: one row
-- per run that changed an item's evidence (between its rows it only decays).
-- timestamps: since, until
SELECT p.surface, p.item_id, p.as_of, p.alpha, p.beta
FROM bandit_posteriors AS p
JOIN ({{ include reports/most_explored }}) AS top
  ON top.surface = p.surface AND top.item_id = p.item_id
WHERE p.namespace = :namespace AND p.as_of > :since AND p.as_of <= :until
ORDER BY p.surface, p.item_id, p.as_of;
