-- The pool of one (namespace, surface) as of :as_of, for publishing.
-- timestamps: as_of
SELECT item_id, alpha, beta
FROM bandit_candidate_pool
WHERE as_of = :as_of AND namespace = :namespace AND surface = :surface
ORDER BY item_id;
