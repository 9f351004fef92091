-- The items with the most trained (explore) impressions in the report's range, per
-- surface: the runs whose windows end in (since, until].
-- timestamps: since, until
SELECT surface, item_id, impressions
FROM (
    SELECT surface, item_id, SUM(impressions) AS impressions,
           ROW_NUMBER() OVER (PARTITION BY surface ORDER BY SUM(impressions) DESC, item_id)
               AS rank_in_surface
    FROM bandit_reward_aggregates
    WHERE namespace = :namespace AND as_of > :since AND as_of <= :until
    GROUP BY surface, item_id
) AS ranked
WHERE rank_in_surface <= :per_surface
ORDER BY surface, rank_in_surface;
