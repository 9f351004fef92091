-- Replace one window's pool of a (namespace, surface).
DELETE FROM bandit_candidate_pool
WHERE as_of = :as_of AND namespace = :namespace AND surface = :surface;
