-- Posteriors as of :as_of computed from the events alone (the predecessor partition is
-- missing or was computed with other settings): the whole evidence of every item within
-- the look-back horizon. This writes a row for every such item, so that later partitions
-- can continue incrementally from it.
-- timestamps: as_of
INSERT INTO bandit_posteriors (namespace, surface, item_id, as_of, alpha, beta)
SELECT namespace, surface, item_id, :as_of,
       :prior_alpha + reward_evidence,
       :prior_beta + non_reward_evidence
FROM ({{ include posteriors/window_evidence }}) AS evidence;
