-- Replace one window's pool of a (namespace, surface).
-- timestamps: as_of
DELETE FROM bandit_candidate_pool
WHERE as_of = :as_of AND namespace = :namespace AND surface = :surface;
