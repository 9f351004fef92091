-- Every catalog item of one (namespace, surface) as of :as_of with its posterior and its
-- exclusion reason (pool/candidates.sql), kept for the rest of the transaction: the pool
-- (insert_pool.sql) and the exclusion counts (exclusions.sql) are both read from it, so
-- the catalog is looked up once per surface.
-- timestamps: as_of
DROP TABLE IF EXISTS bandit_pool_candidates;

CREATE TEMP TABLE bandit_pool_candidates AS
SELECT * FROM ({{ include pool/candidates }}) AS candidates;
