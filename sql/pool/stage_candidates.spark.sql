-- Every catalog item of one (namespace, surface) as of :as_of with its posterior and its
-- exclusion reason (pool/candidates.spark.sql), staged by spark_pool.py as the session's
-- temporary view bandit_pool_candidates: the pool and the exclusion counts read it.
-- timestamps: as_of
SELECT * FROM ({{ include pool/candidates }}) AS candidates
