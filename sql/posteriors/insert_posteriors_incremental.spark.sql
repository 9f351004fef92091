-- Replace the as_of partition of bandit_posteriors with the staged incremental posteriors
-- (posteriors/incremental_posteriors.spark.sql, kept by spark_window.py as the temporary
-- view bandit_window_posteriors).
-- timestamps: as_of
INSERT OVERWRITE TABLE bandit_posteriors PARTITION (as_of = :as_of)
SELECT namespace, surface, item_id, alpha, beta
FROM bandit_window_posteriors;
