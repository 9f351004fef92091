-- Replace one window's partition of bandit_reward_aggregates (Spark SQL: the overwrite of
-- the as_of partition is the delete and the insert).
-- timestamps: as_of
INSERT OVERWRITE TABLE bandit_reward_aggregates PARTITION (as_of = :as_of)
SELECT namespace, surface, item_id, impressions, clicks, add_to_carts, purchases,
       reward_evidence, non_reward_evidence, late_corrections
FROM ({{ include posteriors/window_evidence }}) AS evidence;
