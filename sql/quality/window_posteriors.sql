-- The posterior rows written for one window.
-- timestamps: as_of
SELECT namespace, surface, item_id, alpha, beta
FROM bandit_posteriors
WHERE as_of = :as_of;
