-- The posterior rows written for one window.
SELECT namespace, surface, item_id, alpha, beta
FROM bandit_posteriors
WHERE as_of = :as_of;
