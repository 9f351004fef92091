-- Posteriors as of :as_of computed from the events alone (Spark SQL's variant of
-- posteriors/insert_posteriors_from_scratch.sql): the whole evidence of every item within
-- the look-back horizon, replacing the as_of partition of bandit_posteriors.
-- timestamps: as_of
INSERT OVERWRITE TABLE bandit_posteriors PARTITION (as_of = :as_of)
SELECT namespace, surface, item_id,
       :prior_alpha + reward_evidence,
       :prior_beta + non_reward_evidence
FROM ({{ include posteriors/window_evidence }}) AS evidence;
