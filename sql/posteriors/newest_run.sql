-- The end of the newest materialised window at or before :until (NULL: none).
-- timestamps: until
SELECT MAX(as_of) FROM bandit_posterior_runs WHERE as_of <= :until;
