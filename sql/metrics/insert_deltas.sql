-- Replace one run's contribution to the metric rollups (run after delete_deltas).
-- timestamps: as_of
INSERT INTO bandit_metric_deltas (
    as_of, window_start, namespace, surface, experiment, variant, explore, impressions,
    clicked, carted, purchased, reward_sum, reward_sq_sum
)
SELECT :as_of, bandit_timestamp(window_epoch), namespace, surface, experiment, variant,
       explore, impressions, clicked, carted, purchased, reward_sum, reward_sq_sum
FROM ({{ include metrics/window_deltas }}) AS deltas;
