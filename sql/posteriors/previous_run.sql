-- The run of the partition before this one, if it was materialised.
-- timestamps: previous_as_of
SELECT parameters_fingerprint FROM bandit_posterior_runs WHERE as_of = :previous_as_of;
