-- The catalog's item features: the ranking of the freshest-items candidate and the action
-- context of the Open Bandit Pipeline export.
SELECT item_id, category, price, availability, freshness_index
FROM item_catalog
WHERE namespace = :namespace
ORDER BY item_id;
