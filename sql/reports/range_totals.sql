-- The report's sums over the impressions of its range (impression windows in
-- [since, until)) per surface, experiment, variant and slot kind, from the same deltas as
-- bandit_experiment_readout: the readout, the reward variance and the success criteria
-- add these up. Rewards use the configured weights; reward_sq_sum gives their variance.
-- timestamps: since, until
SELECT surface, experiment, variant, explore,
       SUM(impressions) AS impressions,
       SUM(clicked) AS clicked,
       SUM(carted) AS carted,
       SUM(purchased) AS purchased,
       SUM(reward_sum) AS reward_sum,
       SUM(reward_sq_sum) AS reward_sq_sum
FROM bandit_metric_deltas
WHERE namespace = :namespace AND window_start >= :since AND window_start < :until
GROUP BY surface, experiment, variant, explore
ORDER BY surface, experiment, variant, explore;
