-- Every item's posterior as of :as_of (a materialised partition's end): the fixed prior
-- :prior_alpha, :prior_beta plus its evidence decayed to :as_of (docs/posterior.md).
-- Spark SQL's variant of posteriors/as_of.sql: the Spark warehouse has no empirical prior
-- yet (docs/spark.md), so no bandit_priors. Items without a row have the prior.
-- timestamps: as_of
SELECT e.namespace, e.surface, e.item_id,
       :prior_alpha + e.reward_evidence AS alpha,
       :prior_beta + e.non_reward_evidence AS beta,
       e.last_changed_at
FROM ({{ include posteriors/evidence_as_of }}) AS e;
