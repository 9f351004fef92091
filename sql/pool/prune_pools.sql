-- Keep only the pools of the newest :keep windows: the pool serves the present.
DELETE FROM bandit_candidate_pool
WHERE as_of < (
    SELECT MIN(as_of) FROM (
        SELECT DISTINCT as_of FROM bandit_candidate_pool ORDER BY as_of DESC LIMIT :keep
    ) AS newest
);
