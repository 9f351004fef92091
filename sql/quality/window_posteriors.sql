-- The posterior rows written for one window, reduced in one pass to what their suite
-- checks: the smallest and the largest alpha and beta (a row each: every value lies
-- within bounds exactly when both do; a NaN shows as one of them) and how many rows lack
-- a value. The suite validates those two rows however many items the window touched; an
-- empty window gives none.
-- timestamps: as_of
WITH summary AS (
    SELECT COUNT(*) AS posterior_rows,
           SUM(CASE WHEN alpha IS NULL OR beta IS NULL THEN 1 ELSE 0 END)
               AS rows_missing_a_value,
           MIN(alpha) AS min_alpha, MAX(alpha) AS max_alpha,
           MIN(beta) AS min_beta, MAX(beta) AS max_beta
    FROM bandit_posteriors
    WHERE as_of = :as_of
)
SELECT 'smallest' AS extreme, posterior_rows, rows_missing_a_value,
       min_alpha AS alpha, min_beta AS beta
FROM summary
WHERE posterior_rows > 0
UNION ALL
SELECT 'largest', posterior_rows, rows_missing_a_value, max_alpha, max_beta
FROM summary
WHERE posterior_rows > 0;
