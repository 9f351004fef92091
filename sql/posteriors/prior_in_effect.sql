-- The prior new items of :namespace, :surface get as of :as_of: the run's row in
-- bandit_priors (no row: the fixed prior of the settings).
-- timestamps: as_of
SELECT alpha, beta
FROM bandit_priors
WHERE as_of = :as_of AND namespace = :namespace AND surface = :surface;
