-- The experiment readout view, ordered for display. (Its srm_chi_square counts
-- impressions; `experiment readout` tests the users instead: metrics/assignment_users.)
SELECT namespace, surface, experiment, metric, control_impressions, treatment_impressions,
       control_rate, treatment_rate, relative_difference, relative_difference_ci_low,
       relative_difference_ci_high, holdout_percent
FROM bandit_experiment_readout
ORDER BY namespace, surface, experiment, metric;
