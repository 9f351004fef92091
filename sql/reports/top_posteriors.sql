-- The items with the highest posterior mean alpha / (alpha + beta) on each surface.
SELECT surface, item_id, alpha, beta, mean
FROM (
    SELECT surface, item_id, alpha, beta, alpha / (alpha + beta) AS mean,
           ROW_NUMBER() OVER (PARTITION BY surface ORDER BY alpha / (alpha + beta) DESC, item_id)
               AS rank_in_surface
    FROM bandit_posteriors_latest
    WHERE namespace = :namespace
) AS ranked
WHERE rank_in_surface <= :per_surface
ORDER BY surface, rank_in_surface;
