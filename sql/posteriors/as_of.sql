-- Every item's posterior as of :as_of (a materialised partition's end): its newest row at
-- or before :as_of, with the evidence decayed to :as_of (docs/posterior.md).
-- Items without a row have the prior.
-- timestamps: as_of
SELECT p.namespace, p.surface, p.item_id,
       :prior_alpha + (p.alpha - :prior_alpha)
           * bandit_decay(:as_of_epoch - bandit_epoch(p.as_of), :half_life_seconds) AS alpha,
       :prior_beta + (p.beta - :prior_beta)
           * bandit_decay(:as_of_epoch - bandit_epoch(p.as_of), :half_life_seconds) AS beta,
       p.as_of AS last_changed_at
FROM bandit_posteriors AS p
WHERE p.as_of = (
    SELECT MAX(q.as_of) FROM bandit_posteriors AS q
    WHERE q.namespace = p.namespace AND q.surface = p.surface AND q.item_id = p.item_id
      AND q.as_of <= :as_of
);
