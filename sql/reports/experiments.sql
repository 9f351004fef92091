-- The holdout each experiment's runs recorded (the expected control share for the SRM check).
SELECT experiment, holdout_percent
FROM bandit_experiments
ORDER BY experiment;
