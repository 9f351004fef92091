-- Posteriors as of :as_of for the items the window touched: the newest earlier posterior
-- of the item, its evidence decayed to :as_of, plus what the window added
-- (bandit_reward_aggregates). Items the window did not touch only decay: no row.
-- timestamps: as_of, previous_as_of
INSERT INTO bandit_posteriors (namespace, surface, item_id, as_of, alpha, beta)
SELECT a.namespace, a.surface, a.item_id, :as_of,
       :prior_alpha + COALESCE((p.alpha - :prior_alpha)
           * bandit_decay(:as_of_epoch - bandit_epoch(p.as_of), :half_life_seconds), 0.0)
           + a.reward_evidence,
       :prior_beta + COALESCE((p.beta - :prior_beta)
           * bandit_decay(:as_of_epoch - bandit_epoch(p.as_of), :half_life_seconds), 0.0)
           + a.non_reward_evidence
FROM bandit_reward_aggregates AS a
LEFT JOIN bandit_posteriors AS p
  ON p.namespace = a.namespace AND p.surface = a.surface AND p.item_id = a.item_id
 AND p.as_of = (
        SELECT MAX(q.as_of) FROM bandit_posteriors AS q
        WHERE q.namespace = a.namespace AND q.surface = a.surface AND q.item_id = a.item_id
          AND q.as_of <= :previous_as_of
     )
WHERE a.as_of = :as_of;
