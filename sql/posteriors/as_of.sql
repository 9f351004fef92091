-- Every item's posterior as of :as_of (a materialised partition's end): the prior in
-- effect for its surface (the run's empirical prior in bandit_priors, else the fixed
-- :prior_alpha, :prior_beta) plus its evidence decayed to :as_of (docs/posterior.md).
-- Items without a row have the prior.
-- timestamps: as_of
SELECT e.namespace, e.surface, e.item_id,
       COALESCE(pr.alpha, :prior_alpha) + e.reward_evidence AS alpha,
       COALESCE(pr.beta, :prior_beta) + e.non_reward_evidence AS beta,
       e.last_changed_at
FROM ({{ include posteriors/evidence_as_of }}) AS e
LEFT JOIN bandit_priors AS pr
    ON pr.as_of = :as_of AND pr.namespace = e.namespace AND pr.surface = e.surface;
