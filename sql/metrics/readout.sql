-- The experiment readout view, ordered for display.
SELECT namespace, surface, experiment, metric, control_impressions, treatment_impressions,
       control_rate, treatment_rate, relative_difference, relative_difference_ci_low,
       relative_difference_ci_high, holdout_percent, srm_chi_square
FROM bandit_experiment_readout
ORDER BY namespace, surface, experiment, metric;
