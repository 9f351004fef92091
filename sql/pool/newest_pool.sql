-- The newest window that has a pool stored.
SELECT MAX(as_of) FROM bandit_candidate_pool;
