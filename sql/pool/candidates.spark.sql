-- Spark's variant of pool/candidates.sql (docs/spark.md): the same items, posteriors and
-- reasons, with each item's newest posterior found by a join instead of a subquery.
-- Every catalog item of :namespace, for :surface as of :as_of, with its posterior (the
-- prior when it has none) and why it is excluded from exploration (NULL: eligible).
-- Stored posteriors hold their evidence over the fixed prior (:base_alpha, :base_beta);
-- the prior in effect (:prior_alpha, :prior_beta) is the surface's empirical prior of
-- the run, or the fixed one (docs/posterior.md).
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
newest_posteriors AS (
    -- The newest posterior row at or before :as_of of each item of the surface (Spark
    -- runs no correlated subquery in a select list: the newest by max_by over the rows).
    SELECT q.item_id, MAX(q.as_of) AS posterior_as_of,
           MAX_BY(q.alpha, q.as_of) AS stored_alpha, MAX_BY(q.beta, q.as_of) AS stored_beta
    FROM bandit_posteriors AS q
    WHERE q.namespace = :namespace AND q.surface = :surface AND q.as_of <= :as_of
    GROUP BY q.item_id
),
catalog_posteriors AS (
    SELECT c.item_id, c.category, c.price, c.availability, c.freshness_index,
           p.posterior_as_of, p.stored_alpha, p.stored_beta
    FROM item_catalog AS c
    LEFT JOIN newest_posteriors AS p ON p.item_id = c.item_id
    WHERE c.namespace = :namespace
),
decayed AS (
    -- The posterior decayed from its row's time to :as_of (the prior when it has none).
    SELECT item_id, category, price, availability, freshness_index,
           CASE WHEN posterior_as_of IS NULL THEN :prior_alpha
                ELSE :prior_alpha + (stored_alpha - :base_alpha)
                     * bandit_decay(:as_of_epoch - bandit_epoch(posterior_as_of),
                                    :half_life_seconds) END AS alpha,
           CASE WHEN posterior_as_of IS NULL THEN :prior_beta
                ELSE :prior_beta + (stored_beta - :base_beta)
                     * bandit_decay(:as_of_epoch - bandit_epoch(posterior_as_of),
                                    :half_life_seconds) END AS beta
    FROM catalog_posteriors
),
candidates AS (
    SELECT d.item_id, d.price, d.availability, d.freshness_index, m.median_price,
           d.alpha, d.beta, d.alpha - :prior_alpha + d.beta - :prior_beta AS evidence
    FROM decayed AS d
    LEFT JOIN category_medians AS m ON m.category = d.category
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
