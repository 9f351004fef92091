-- The impression keys of one window (posteriors/window_keys.sql), kept for the rest of
-- the transaction: PostgreSQL's variant of posteriors/stage_window_keys.sql. The
-- aggregates (posteriors/window_evidence.postgresql.sql) and the metric deltas
-- (metrics/window_deltas.sql) are both read from it, so the window's rows are reduced
-- once. A from-scratch posterior stages it again over the look-back horizon.
--
-- No order is kept: sorting a busy window's keys cost more than reducing them
-- (docs/performance.md), and the evidence sums over them are exact, so a rerun's sums
-- equal a clean run's to the last bit whatever order its plan reads the keys in. The
-- table is analysed once written: a new temporary table has no statistics, and without
-- them the planner guessed a seventh of its rows and sorted on disk where a hash
-- aggregate fits in memory.
-- timestamps: as_of, window_start, future_scan_start
DROP TABLE IF EXISTS bandit_window_keys;

CREATE TEMP TABLE bandit_window_keys AS
SELECT * FROM ({{ include posteriors/window_keys }}) AS keys;

ANALYZE bandit_window_keys;
