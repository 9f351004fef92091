-- Every catalog item of :namespace, for :surface as of :as_of, with its posterior (the
-- prior when it has none) and why it is excluded from exploration (NULL: eligible).
-- Exclusions, in order: no usable price, a price beyond :max_price_ratio times its
-- category's median, availability below :min_availability, freshness below
-- :min_freshness, and graduation: decayed trained impressions at or above
-- :graduation_impressions (the item has enough evidence; the ranker takes over).
-- timestamps: as_of
WITH ranked_prices AS (
    SELECT category, price,
           ROW_NUMBER() OVER (PARTITION BY category ORDER BY price) AS position,
           COUNT(*) OVER (PARTITION BY category) AS items
    FROM item_catalog
    WHERE namespace = :namespace AND price > 0 AND category IS NOT NULL
),
category_medians AS (
    SELECT category, AVG(price) AS median_price
    FROM ranked_prices
    WHERE position IN ((items + 1) / 2, (items + 2) / 2)
    GROUP BY category
),
newest_rows AS (
    -- Each item's newest posterior row at or before :as_of (one index-ordered pass).
    SELECT item_id, alpha, beta, as_of,
           ROW_NUMBER() OVER (PARTITION BY item_id ORDER BY as_of DESC) AS recency
    FROM bandit_posteriors
    WHERE namespace = :namespace AND surface = :surface AND as_of <= :as_of
),
posteriors AS (
    SELECT item_id,
           :prior_alpha + (alpha - :prior_alpha)
               * bandit_decay(:as_of_epoch - bandit_epoch(as_of), :half_life_seconds) AS alpha,
           :prior_beta + (beta - :prior_beta)
               * bandit_decay(:as_of_epoch - bandit_epoch(as_of), :half_life_seconds) AS beta
    FROM newest_rows
    WHERE recency = 1
),
candidates AS (
    SELECT c.item_id, c.price, c.availability, c.freshness_index, m.median_price,
           COALESCE(p.alpha, :prior_alpha) AS alpha,
           COALESCE(p.beta, :prior_beta) AS beta,
           COALESCE(p.alpha - :prior_alpha + p.beta - :prior_beta, 0.0) AS evidence
    FROM item_catalog AS c
    LEFT JOIN category_medians AS m ON m.category = c.category
    LEFT JOIN posteriors AS p ON p.item_id = c.item_id
    WHERE c.namespace = :namespace
)
SELECT item_id, alpha, beta, evidence, price, availability, freshness_index,
       CASE
           WHEN price IS NULL OR price <= 0 THEN 'no_price'
           WHEN median_price IS NOT NULL AND price > :max_price_ratio * median_price
               THEN 'price_outlier'
           WHEN availability IS NULL OR availability < :min_availability THEN 'unavailable'
           WHEN freshness_index IS NULL OR freshness_index < :min_freshness THEN 'not_fresh'
           WHEN evidence >= :graduation_impressions THEN 'graduated'
       END AS excluded_reason
FROM candidates
