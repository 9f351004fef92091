-- How many catalog items each exclusion reason removed (NULL: eligible), from the
-- candidates staged by stage_candidates.sql.
SELECT excluded_reason, COUNT(*) AS items
FROM bandit_pool_candidates
GROUP BY excluded_reason;
