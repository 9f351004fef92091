-- The impression keys of one window (posteriors/window_keys.sql), kept for the rest of
-- the transaction: the aggregates (posteriors/window_evidence.sql) and the metric deltas
-- (metrics/window_deltas.sql) are both read from it, so the window's rows are reduced
-- once. A from-scratch posterior stages it again over the look-back horizon. The rows
-- are stored in key order, whatever plan made them: an item's evidence is a sum of
-- floating-point numbers, and only a fixed order of its terms makes a rerun's sums equal
-- a clean run's to the last bit. (PostgreSQL's variant, stage_window_keys.postgresql.sql,
-- sums exactly instead and skips the sort, and builds the same rows from the same parts
-- without keeping the window's keys for a full join.)
-- timestamps: as_of, window_start, future_scan_start
DROP TABLE IF EXISTS bandit_window_keys;

CREATE TEMP TABLE bandit_window_keys AS
SELECT * FROM ({{ include posteriors/window_keys }}) AS keys
ORDER BY namespace, surface, item_id, request_id;
