-- Store the eligible candidates of one (namespace, surface) as of :as_of (Spark): replaces
-- the window's partition of the surface, from the candidates staged by
-- stage_candidates.spark.sql.
-- timestamps: as_of
INSERT OVERWRITE bandit_candidate_pool PARTITION (as_of = :as_of, surface = :surface)
SELECT :namespace, item_id, alpha, beta, evidence, price, availability, freshness_index
FROM bandit_pool_candidates
WHERE excluded_reason IS NULL;
