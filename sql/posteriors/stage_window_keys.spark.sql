-- The impression keys of one window (posteriors/window_keys.sql, whose parts have Spark
-- variants that read only the ingestion hours they need), which spark_window.py keeps,
-- computed once, as the session's temporary view bandit_window_keys for the rest of the
-- window: the aggregates are read from it, and a from-scratch posterior stages it again
-- over the look-back horizon. No order is kept: the Spark sums over it are exact
-- (posteriors/window_evidence.spark.sql).
-- timestamps: as_of, window_start, future_scan_start
SELECT * FROM ({{ include posteriors/window_keys }}) AS keys;
