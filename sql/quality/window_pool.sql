-- One window's candidate pool with the catalog fields it was chosen on.
SELECT p.surface, p.item_id, p.alpha, p.beta, c.price, c.availability, c.freshness_index
FROM bandit_candidate_pool AS p
LEFT JOIN item_catalog AS c ON c.namespace = p.namespace AND c.item_id = p.item_id
WHERE p.as_of = :as_of;
