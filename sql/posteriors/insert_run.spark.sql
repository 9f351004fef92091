-- Record that a partition was materialised, how, and with which settings: the last write
-- of a window, which makes it count (posteriors/delete_partition.spark.sql).
-- timestamps: as_of, window_start
INSERT OVERWRITE TABLE bandit_posterior_runs PARTITION (as_of = :as_of)
SELECT :window_start, :mode, :parameters_fingerprint, :prior_alpha, :prior_beta,
       :half_life_days, :items_touched, :posterior_rows, :impressions, :reward_evidence,
       current_timestamp();
