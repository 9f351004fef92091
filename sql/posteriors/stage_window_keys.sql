-- The impression keys of one window (posteriors/window_keys.sql), kept for the rest of
-- the transaction: the aggregates (posteriors/window_evidence.sql) and the metric deltas
-- (metrics/window_deltas.sql) are both read from it, so the window's rows are reduced
-- once. A from-scratch posterior stages it again over the look-back horizon.
-- timestamps: as_of, window_start, future_scan_start
DROP TABLE IF EXISTS bandit_window_keys;

CREATE TEMP TABLE bandit_window_keys AS
SELECT * FROM ({{ include posteriors/window_keys }}) AS keys;
