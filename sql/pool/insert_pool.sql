-- Store the eligible candidates of one (namespace, surface) as of :as_of, from the
-- candidates staged by stage_candidates.sql.
-- timestamps: as_of
INSERT INTO bandit_candidate_pool (
    as_of, namespace, surface, item_id, alpha, beta, evidence, price, availability,
    freshness_index
)
SELECT :as_of, :namespace, :surface, item_id, alpha, beta, evidence, price, availability,
       freshness_index
FROM bandit_pool_candidates
WHERE excluded_reason IS NULL;
