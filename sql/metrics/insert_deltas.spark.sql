-- Replace one run's contribution to the metric rollups (Spark): the window's partition of
-- bandit_metric_deltas, named statically, so a rerun replaces it and an empty window
-- empties it.
-- timestamps: as_of
INSERT OVERWRITE bandit_metric_deltas PARTITION (as_of = :as_of)
SELECT timestamp_seconds(window_epoch), namespace, surface, experiment, variant, explore,
       impressions, clicked, carted, purchased, reward_sum, reward_sq_sum
FROM ({{ include metrics/window_deltas }}) AS deltas;
