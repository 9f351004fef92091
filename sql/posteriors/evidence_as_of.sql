-- Every item's evidence as of :as_of (a materialised partition's end): its newest
-- posterior row at or before :as_of, less the fixed prior the rows are stored over
-- (:prior_alpha, :prior_beta), decayed to :as_of (docs/posterior.md).
-- timestamps: as_of
SELECT p.namespace, p.surface, p.item_id,
       (p.alpha - :prior_alpha)
           * bandit_decay(:as_of_epoch - bandit_epoch(p.as_of), :half_life_seconds)
           AS reward_evidence,
       (p.beta - :prior_beta)
           * bandit_decay(:as_of_epoch - bandit_epoch(p.as_of), :half_life_seconds)
           AS non_reward_evidence,
       p.as_of AS last_changed_at
FROM bandit_posteriors AS p
WHERE p.as_of = (
    SELECT MAX(q.as_of) FROM bandit_posteriors AS q
    WHERE q.namespace = p.namespace AND q.surface = p.surface AND q.item_id = p.item_id
      AND q.as_of <= :as_of
);
