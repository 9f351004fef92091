-- One window's candidate pool with the catalog fields it was chosen on.
-- timestamps: as_of
SELECT surface, item_id, alpha, beta, price, availability, freshness_index
FROM bandit_candidate_pool
WHERE as_of = :as_of;
