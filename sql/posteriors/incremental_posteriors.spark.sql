-- Posteriors as of :as_of for the items the window touched (Spark SQL's variant of the
-- query in posteriors/insert_posteriors_incremental.sql): the newest earlier posterior of
-- the item, its evidence decayed to :as_of, plus what the window added
-- (bandit_reward_aggregates). Spark refuses to overwrite a table that the same statement
-- reads, so spark_window.py stages this result first (bandit_window_posteriors) and
-- insert_posteriors_incremental.spark.sql writes it. The newest earlier row of each
-- touched item is found with max_by over the items' rows (Spark runs no correlated
-- subquery in a join condition).
-- timestamps: as_of, previous_as_of
WITH touched AS (
    SELECT namespace, surface, item_id, reward_evidence, non_reward_evidence
    FROM bandit_reward_aggregates
    WHERE as_of = :as_of
),
previous AS (
    SELECT p.namespace, p.surface, p.item_id,
           MAX(p.as_of) AS as_of,
           max_by(p.alpha, p.as_of) AS alpha,
           max_by(p.beta, p.as_of) AS beta
    FROM bandit_posteriors AS p
    LEFT SEMI JOIN touched AS a
      ON p.namespace = a.namespace AND p.surface = a.surface AND p.item_id = a.item_id
    WHERE p.as_of <= :previous_as_of
    GROUP BY p.namespace, p.surface, p.item_id
)
SELECT a.namespace, a.surface, a.item_id,
       :prior_alpha + COALESCE((p.alpha - :prior_alpha)
           * bandit_decay(:as_of_epoch - bandit_epoch(p.as_of), :half_life_seconds), 0.0)
           + a.reward_evidence AS alpha,
       :prior_beta + COALESCE((p.beta - :prior_beta)
           * bandit_decay(:as_of_epoch - bandit_epoch(p.as_of), :half_life_seconds), 0.0)
           + a.non_reward_evidence AS beta
FROM touched AS a
LEFT JOIN previous AS p
  ON p.namespace = a.namespace AND p.surface = a.surface AND p.item_id = a.item_id;
